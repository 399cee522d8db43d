"""``featurestore serve`` (the REST service under uvicorn) and ``featurestore api token ...``.

The web stack (FastAPI, uvicorn) is imported inside these commands only, so every other command
starts without loading it.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.table import Table

from featurestore.cli.app import CliContext


def register(cli: click.Group) -> None:
    """Attach ``serve`` and the ``api`` group to ``cli``."""
    cli.add_command(serve)
    cli.add_command(api)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=6566, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes; each opens its own store.",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.pass_obj
def serve(state: CliContext, host: str, port: int, workers: int, log_level: str) -> None:
    """Serve online lookups (Feast's /get-online-features), /v1 registry browsing, /health and
    /metrics over HTTP."""
    import uvicorn  # the web stack loads for this command only (see the module docstring)

    from api.app import REPO_ENV, create_app

    repo = state.repo.resolve()
    # Open the config now, so a bad featurestore.yaml fails here with one clear line.
    store = state.store
    store.config  # noqa: B018 - loading it is the check
    if workers == 1:
        app = create_app(store)
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
        return
    state.close()
    # Several workers: uvicorn imports the factory in each process, which opens its own store.
    os.environ[REPO_ENV] = str(repo)
    uvicorn.run(
        "api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )


@click.group()
def api() -> None:
    """Manage the REST service's access tokens."""


@api.group()
def token() -> None:
    """Tokens of the REST service's tokens file (needs admin: pass an admin key with --token)."""


_FILE_OPTION = click.option(
    "--file",
    "tokens_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Tokens file (default: api.tokens_file of featurestore.yaml or "
    "FEATURESTORE_API_TOKENS_FILE).",
)


@token.command("create")
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="A role the token acts with (repeat).")
@_FILE_OPTION
@click.pass_obj
def create(state: CliContext, name: str, roles: tuple[str, ...], tokens_file: Path | None) -> None:
    """Create a token for principal NAME with its own roles; prints it once (only its hash is
    stored). It never takes the roles of a registry principal called NAME."""
    secret, entry = state.store.create_api_token(name, roles=roles, tokens_file=tokens_file)
    click.echo(secret)
    click.echo(
        f"token {entry.prefix}… for {name!r} (roles {list(entry.roles)}) added; it is shown "
        "only now: store it safely.",
        err=True,
    )


@token.command("list")
@_FILE_OPTION
@click.pass_obj
def list_tokens(state: CliContext, tokens_file: Path | None) -> None:
    """List the tokens file's entries (prefix, principal, roles), never the tokens."""
    table = Table("token", "principal", "roles", "created", "created by")
    for entry in state.store.list_api_tokens(tokens_file=tokens_file):
        table.add_row(
            entry.prefix,
            entry.principal,
            ", ".join(entry.roles),
            entry.created,
            entry.created_by or "",
        )
    state.console.print(table)


@token.command("revoke")
@click.argument("prefix")
@_FILE_OPTION
@click.pass_obj
def revoke(state: CliContext, prefix: str, tokens_file: Path | None) -> None:
    """Remove the token whose listed prefix starts with PREFIX; refused from the next request."""
    entry = state.store.revoke_api_token(prefix, tokens_file=tokens_file)
    click.echo(f"revoked token {entry.prefix}… of {entry.principal!r}")
