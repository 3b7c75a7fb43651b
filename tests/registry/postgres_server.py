"""A real PostgreSQL server for the tests: initdb in a temp dir, on a free loopback port, stopped after.

initdb and pg_ctl refuse to run as root (as CI does), so there they run as the ``postgres`` user the
Debian package creates, with the data directory owned by it.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

_INSTALL = "install PostgreSQL (Debian: apt-get install postgresql; scripts/test.sh does) and psycopg " \
           "(pip install -e '.[test]')"
_USER = "scoring"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    if not found[-1]:
        pytest.fail(f"PostgreSQL's initdb was not found: {_INSTALL}")
    return Path(found[-1]).parent


class PostgresServer:
    """One PostgreSQL cluster; :meth:`database` makes a fresh database and returns its URI."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir, self.port = bin_dir, free_port()
        self.home = Path(tempfile.mkdtemp(prefix="scoring-pg-"))
        self.data = self.home / "data"
        self._owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        """Run a PostgreSQL program, as ``postgres`` when we are root."""
        demote = (lambda: (os.setgid(self._owner.pw_gid), os.setuid(self._owner.pw_uid))) if self._owner else None
        subprocess.run(args, check=True, capture_output=True, preexec_fn=demote, cwd=self.home)

    def start(self) -> None:
        if self._owner:
            os.chown(self.home, self._owner.pw_uid, self._owner.pw_gid)
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", _USER, "-A", "trust", "--no-sync")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.home} -c fsync=off -c max_connections=200"
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.home / "log"), "-o", options,
                  "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    @property
    def admin_uri(self) -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/postgres"

    def database(self) -> str:
        import psycopg

        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_uri, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session; fails (never skips) when PostgreSQL or psycopg is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail(f"psycopg is not installed: {_INSTALL}")
    server = PostgresServer(_bin_dir())
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"PostgreSQL did not start: {exc.stderr.decode(errors='replace')[-2000:]}")
    yield server
    server.stop()


@pytest.fixture
def postgres_uri(postgres_server: PostgresServer) -> str:
    """A new, empty database on the session's server."""
    return postgres_server.database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.heavy)])
def registry_location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """A registry URI and its artifact root: an embedded registry (default suite) or a PostgreSQL one (heavy)."""
    if request.param == "sqlite":
        return str(tmp_path / "registry"), None
    return request.getfixturevalue("postgres_uri"), str(tmp_path / "artifacts")
