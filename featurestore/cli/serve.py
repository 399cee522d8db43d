"""``featurestore serve`` (the REST service under uvicorn) and ``featurestore api token create``.

The web stack (FastAPI, uvicorn) is imported inside these commands only, so every other command
starts without loading it.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from featurestore.cli.app import CliContext
from featurestore.errors import ConfigError


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
    """Bearer tokens (stored as SHA-256 hashes in the tokens file)."""


@token.command("create")
@click.argument("name")
@click.option(
    "--file",
    "tokens_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Tokens file (default: api.tokens_file of featurestore.yaml or "
    "FEATURESTORE_API_TOKENS_FILE).",
)
@click.pass_obj
def create(state: CliContext, name: str, tokens_file: Path | None) -> None:
    """Create a token for principal NAME; prints it once (only its hash is stored)."""
    from api.auth import create_token  # as in serve: the web stack loads only here
    from api.settings import TOKENS_FILE_ENV, ApiSettings

    path = tokens_file or ApiSettings.from_config(state.store.config).tokens_file
    if path is None:
        raise ConfigError(
            "no tokens file configured: set api: {tokens_file: api_tokens.json} in "
            f"featurestore.yaml, set {TOKENS_FILE_ENV}, or pass --file"
        )
    secret = create_token(path, name)
    click.echo(secret)
    click.echo(
        f"Token for {name!r} added to {path}; it is shown only now: store it safely.", err=True
    )
