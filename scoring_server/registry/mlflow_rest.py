"""An MLflow tracking server's Model Registry, read through its REST API, without MLflow installed.

Teams that already keep their models in MLflow serve them from where they are: ``--registry
http(s)://HOST`` (or ``mlflow+http(s)://``) resolves ``models:/`` URIs against the server's
registered models, versions, stages and aliases. Registering and promoting stay MLflow's job: the
write side of :class:`~scoring_server.registry.store.RegistryStore` is refused.

A version's files are downloaded once, when it is first served, into a local cache keyed by the
server, the name, the number and MLflow's creation timestamp of the version (a model deleted and
registered again in MLflow gets a new cache entry); a download goes to a temporary folder renamed
into place, so a reader never sees half a model. The artifacts may be in the tracking server's
proxied store (``mlflow-artifacts:``) or on a filesystem this machine sees (``file:`` or a path).

Credentials come from MLflow's own variables: ``MLFLOW_TRACKING_TOKEN`` (Bearer), else
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (Basic). They are never logged or shown.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import uuid as uuidlib
from collections.abc import Callable
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlsplit, urlunsplit
from urllib.request import Request, urlopen

from flavors.uri import resolve_model_uri

from .errors import RegistryError
from .store import READY, ModelVersion, RegisteredModel

MLFLOW_SCHEMES = ("http", "https", "mlflow+http", "mlflow+https")
#: Seconds to wait for the tracking server to answer (per request, and between bytes of a download).
TIMEOUT_SECONDS = 30
_API = "/api/2.0/mlflow"
_ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
_PAGE = 1000  # the most MLflow returns per search page
_DOWNLOADING = ".download-"


def open_mlflow_store(uri: str, cache_root: str | None = None) -> tuple[MlflowRegistryStore, Path]:
    """The store of the tracking server at ``uri``, and its cache directory (under ``cache_root``, else
    ``$XDG_CACHE_HOME/scoring-server/mlflow``, else ``~/.cache/...``), one per server."""
    base = uri.removeprefix("mlflow+").rstrip("/")
    parts = urlsplit(base)
    default = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "scoring-server" / "mlflow"
    server_key = re.sub(r"[^A-Za-z0-9.-]", "_", f"{parts.hostname}_{parts.port or ''}{parts.path}")
    cache = Path(cache_root or default).expanduser().resolve() / server_key
    return MlflowRegistryStore(base, cache), cache


class MlflowRegistryStore:
    """The read side of a registry store, on an MLflow tracking server; writes are refused."""

    def __init__(self, base_url: str, cache: Path) -> None:
        parts = urlsplit(base_url)
        # Credentials in the URI (http://user:pass@host) work like the MLflow variables, never shown.
        self.base = urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))
        self.cache = cache
        self._auth = _authorization(parts.username, parts.password)

    def __str__(self) -> str:
        return self.base

    # --- registered models -------------------------------------------------------------

    def get_model(self, name: str) -> RegisteredModel:
        model = self._get(f"{_API}/registered-models/get", name=name, missing=self._no_model(name))["registered_model"]
        return _registered_model(model)

    def list_models(self) -> list[RegisteredModel]:
        found = self._search(f"{_API}/registered-models/search", "registered_models")
        return sorted((_registered_model(model) for model in found), key=lambda model: model.name)

    # --- versions ----------------------------------------------------------------------

    def get_version(self, name: str, version: int) -> ModelVersion:
        try:
            found = self._get(f"{_API}/model-versions/get", name=name, version=str(version), missing="")
        except _Missing:
            self.get_model(name)  # a missing model says so
            raise RegistryError(f"model {name!r} has no version {version}") from None
        return self._version(found["model_version"])

    def list_versions(self, name: str) -> list[ModelVersion]:
        found = self._search(f"{_API}/model-versions/search", "model_versions", filter=f"name='{_quoted(name)}'")
        if not found:
            self.get_model(name)  # a missing model says so; a model without versions lists none
        return sorted((self._version(version) for version in found), key=lambda version: version.version)

    def pending_versions(self) -> list[ModelVersion]:
        return []  # MLflow finishes its registrations itself

    def expire_pending(self, is_stale: Callable[[ModelVersion], bool]) -> list[ModelVersion]:
        return []

    def fetch(self, version: ModelVersion) -> ModelVersion:
        """``version`` with its files in the cache: downloaded now unless an earlier fetch did."""
        target = Path(version.path)
        if target.is_dir():
            return version
        what = f"version {version.version} of {version.name!r}"
        location = self._get(f"{_API}/model-versions/get-download-uri", name=version.name,
                             version=str(version.version), missing=f"there is no {what} any more")["artifact_uri"]
        staging = target.parent / f"{_DOWNLOADING}{uuidlib.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            self._download(location, staging, what)
            try:
                staging.rename(target)
            except OSError:
                if not target.is_dir():  # not another process's download finishing first
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return version

    # --- writes: MLflow's job ----------------------------------------------------------

    def _read_only(self, *args, **kwargs):
        raise RegistryError(f"{self.base} is an MLflow registry: register and promote versions with MLflow")

    create_model = update_model = reserve_version = complete_version = _read_only
    update_version = delete_version = set_alias = delete_alias = _read_only

    # --- the REST API ------------------------------------------------------------------

    def _version(self, found: dict) -> ModelVersion:
        """Our view of an MLflow version; its path is where the cache keeps (or will keep) its files."""
        name, number, created = found["name"], int(found["version"]), int(found.get("creation_timestamp", 0))
        status = found.get("status", READY)
        return ModelVersion(
            name=name, version=number, source=found.get("source", ""), stage=found.get("current_stage", "None"),
            description=found.get("description", ""), tags=_tags(found), status=status,
            created_at=created / 1000, updated_at=int(found.get("last_updated_timestamp", created)) / 1000,
            path=str(self.cache / "models" / name / f"{number}-{created}") if status == READY else "",
            uuid=f"{name}/{number}/{created}")

    def _search(self, endpoint: str, key: str, **query: str) -> list[dict]:
        """Every result of a paginated MLflow search."""
        results, token = [], None
        while True:
            page = self._get(endpoint, max_results=str(_PAGE), **query, **({"page_token": token} if token else {}))
            results.extend(page.get(key, []))
            token = page.get("next_page_token")
            if not token:
                return results

    def _get(self, endpoint: str, missing: str | None = None, **query: str) -> dict:
        """The JSON answer of a GET; ``RESOURCE_DOES_NOT_EXIST`` raises RegistryError(``missing``), or
        :class:`_Missing` when ``missing`` is empty."""
        with self._open(f"{endpoint}?{urlencode(query)}", missing) as response:
            return json.load(response)

    def _open(self, endpoint: str, missing: str | None = None):
        """The tracking server's answer to GET ``endpoint``; its errors as one-line RegistryErrors."""
        request = Request(self.base + endpoint, headers={"Accept": "application/json", **self._auth})
        try:
            return urlopen(request, timeout=TIMEOUT_SECONDS)  # noqa: S310 - the configured registry
        except HTTPError as exc:
            code, message = _error(exc)
            if code == "RESOURCE_DOES_NOT_EXIST" and missing is not None:
                if not missing:
                    raise _Missing() from None
                raise RegistryError(missing) from None
            if exc.code in (401, 403):
                raise RegistryError(f"the MLflow tracking server {self.base} refused access (HTTP {exc.code}): set "
                                    "MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and "
                                    "MLFLOW_TRACKING_PASSWORD") from None
            raise RegistryError(f"the MLflow tracking server {self.base} answered HTTP {exc.code}: {message}") from None
        except (URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryError(f"cannot reach the MLflow tracking server {self.base}: {reason}") from None

    def _no_model(self, name: str) -> str:
        return f"registered model {name!r} does not exist in the MLflow registry {self.base}"

    # --- artifacts ---------------------------------------------------------------------

    def _download(self, location: str, into: Path, what: str) -> None:
        """Copy the artifacts at ``location`` (an MLflow artifact URI) into the directory ``into``."""
        scheme = location.partition(":")[0] if ":" in location else ""
        if scheme == "mlflow-artifacts":
            self._download_proxied(urlsplit(location).path.strip("/"), into)
        elif scheme in ("", "file"):
            shutil.copytree(resolve_model_uri(location), into, dirs_exist_ok=True)
        else:
            raise RegistryError(f"{what} is stored at {location}, which scoring-server does not read: it "
                                "downloads from the tracking server's proxied store (mlflow server "
                                "--serve-artifacts, mlflow-artifacts:) or a local path")

    def _download_proxied(self, remote: str, into: Path) -> None:
        """Download the directory ``remote`` of the proxied store, recursively."""
        listing = self._get(_ARTIFACTS_API, path=remote)
        for entry in listing.get("files", []):
            name = entry["path"].rsplit("/", 1)[-1]
            if name in ("", ".", ".."):
                continue
            if entry.get("is_dir"):
                (into / name).mkdir()
                self._download_proxied(f"{remote}/{name}", into / name)
            else:
                with self._open(f"{_ARTIFACTS_API}/{quote(f'{remote}/{name}')}") as response, \
                        open(into / name, "wb") as out:
                    shutil.copyfileobj(response, out)


class _Missing(Exception):
    """The tracking server has no such resource (the caller says which)."""


def _authorization(username: str | None, password: str | None) -> dict[str, str]:
    """The Authorization header from MLflow's variables, else from the URI's user and password."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    username = os.environ.get("MLFLOW_TRACKING_USERNAME") or username
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD") or password
    if username and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}
    return {}


def _error(exc: HTTPError) -> tuple[str, str]:
    """MLflow's error code and first line of message from an error answer (the status line otherwise)."""
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    message = str(body.get("message") or exc.reason).strip().splitlines()
    return str(body.get("error_code", "")), message[0] if message else ""


def _registered_model(found: dict) -> RegisteredModel:
    aliases = {alias["alias"]: int(alias["version"]) for alias in found.get("aliases", [])}
    return RegisteredModel(name=found["name"], description=found.get("description", ""), tags=_tags(found),
                           created_at=int(found.get("creation_timestamp", 0)) / 1000,
                           updated_at=int(found.get("last_updated_timestamp", 0)) / 1000, aliases=aliases)


def _tags(found: dict) -> dict:
    return {tag["key"]: tag.get("value", "") for tag in found.get("tags", [])}


def _quoted(name: str) -> str:
    """``name`` inside a single-quoted MLflow search filter."""
    return name.replace("\\", "\\\\").replace("'", "\\'")
