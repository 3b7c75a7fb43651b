"""``scoring-server registry ...``: the registry from the command line, as tables or ``--json``."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from functools import wraps

import click

from .errors import RegistryError
from .names import STAGES
from .registry import ARTIFACT_ROOT_ENV, ROOT_ENV, ModelRegistry
from .store import ModelVersion, RegisteredModel

_CONTEXT = {"help_option_names": ["--help"]}
_registry_option = click.option(
    "--registry", "root",
    help=f"Registry: a directory, postgresql://USER@HOST:PORT/DB or http(s)://MLFLOW_HOST (default ${ROOT_ENV}, "
         "else ~/.scoring-server/registry).")


def _export_artifact_root(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Every ModelRegistry of this command reads it from the environment, as ``serve`` passes it on."""
    if value:
        os.environ[ARTIFACT_ROOT_ENV] = value


@click.group(context_settings=_CONTEXT)
@_registry_option
@click.option("--artifact-root", expose_value=False, callback=_export_artifact_root,
              help=f"Where a postgresql:// registry keeps version files (default ${ARTIFACT_ROOT_ENV}).")
@click.pass_context
def registry(ctx: click.Context, root: str | None) -> None:
    """Register models and move them through stages and aliases."""
    ctx.obj = root


def _command(group: click.Group, name: str | None = None):
    """A registry subcommand: gets the registry, turns RegistryError into a clean exit, offers --json.

    ``--registry`` is taken after the subcommand too (``registry list --registry DIR``), where it wins.
    """
    def decorate(func):
        @group.command(name, context_settings=_CONTEXT)
        @_registry_option
        @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
        @click.pass_obj
        @wraps(func)
        def command(group_root, root, as_json, **kwargs):
            try:
                result = func(ModelRegistry(root or group_root), **kwargs)
            except RegistryError as exc:
                raise click.ClickException(str(exc)) from None
            _print(result, as_json)
        return command
    return decorate


@_command(registry, "create")
@click.argument("name")
@click.option("--description", default="")
def create(reg: ModelRegistry, name: str, description: str):
    """Create a registered model NAME."""
    return reg.create_model(name, description)


@_command(registry, "register")
@click.argument("name")
@click.argument("source")
@click.option("--description", default="")
def register(reg: ModelRegistry, name: str, source: str, description: str):
    """Copy the model directory SOURCE into the registry as the next version of NAME."""
    return reg.register(name, source, description)


@_command(registry, "list")
def list_models(reg: ModelRegistry):
    """List registered models."""
    models = reg.list_models()
    if not models:
        click.echo(f"No registered models in the registry {reg.root}", err=True)
    return models


@_command(registry, "show")
@click.argument("name")
@click.argument("version", type=int, required=False)
def show(reg: ModelRegistry, name: str, version: int | None):
    """Show a registered model's versions, or one version."""
    return reg.get_version(name, version) if version is not None else reg.list_versions(name)


@_command(registry, "transition")
@click.argument("name")
@click.argument("version", type=int)
@click.argument("stage", type=click.Choice(STAGES, case_sensitive=False), metavar="STAGE")
@click.option("--archive-existing", is_flag=True, help="Archive the versions already in STAGE.")
def transition(reg: ModelRegistry, name: str, version: int, stage: str, archive_existing: bool):
    """Move VERSION of NAME to STAGE."""
    return reg.transition(name, version, stage, archive_existing)


@registry.group(context_settings=_CONTEXT)
def alias() -> None:
    """Point aliases (e.g. champion) at versions."""


@_command(alias, "set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", type=int)
def alias_set(reg: ModelRegistry, name: str, alias_name: str, version: int):
    """Point ALIAS of NAME at VERSION."""
    reg.set_alias(name, alias_name, version)
    return reg.get_model(name)


@_command(alias, "delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
def alias_delete(reg: ModelRegistry, name: str, alias_name: str):
    """Delete ALIAS of NAME."""
    reg.delete_alias(name, alias_name)
    return reg.get_model(name)


@_command(registry, "tag")
@click.argument("name")
@click.argument("key")
@click.argument("value")
@click.option("--version", type=int, help="Tag this version instead of the registered model.")
def tag(reg: ModelRegistry, name: str, key: str, value: str, version: int | None):
    """Set tag KEY=VALUE on NAME (or on one version)."""
    reg.set_tag(name, key, value, version)
    return reg.get_version(name, version) if version is not None else reg.get_model(name)


@_command(registry, "describe")
@click.argument("name")
@click.argument("description")
@click.option("--version", type=int, help="Describe this version instead of the registered model.")
def describe(reg: ModelRegistry, name: str, description: str, version: int | None):
    """Set the description of NAME (or of one version)."""
    reg.describe(name, description, version)
    return reg.get_version(name, version) if version is not None else reg.get_model(name)


@_command(registry, "delete-version")
@click.argument("name")
@click.argument("version", type=int)
def delete_version(reg: ModelRegistry, name: str, version: int):
    """Delete VERSION of NAME and its files (refused while an alias points to it)."""
    reg.delete_version(name, version)
    return reg.list_versions(name)


def _print(result, as_json: bool) -> None:
    rows = result if isinstance(result, list) else [result]
    if as_json:
        payload = [dataclasses.asdict(row) for row in rows]
        click.echo(json.dumps(payload if isinstance(result, list) else payload[0], indent=2))
    elif rows:
        click.echo(_table(rows))


def _table(rows: list) -> str:
    if isinstance(rows[0], RegisteredModel):
        header = ["name", "aliases", "description", "updated"]
        cells = [[r.name, ", ".join(f"{a}→v{v}" for a, v in r.aliases.items()), r.description, _time(r.updated_at)]
                 for r in rows]
    else:
        header = ["name", "version", "stage", "status", "description", "created", "source"]
        cells = [[r.name, str(r.version), r.stage, r.status, r.description, _time(r.created_at), r.source]
                 for r in rows if isinstance(r, ModelVersion)]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *cells)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in [header, *cells])


def _time(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")
