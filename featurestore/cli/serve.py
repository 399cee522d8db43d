"""``featurestore serve`` (the REST service under uvicorn) and ``featurestore api token ...``.

The web stack (FastAPI, uvicorn) is imported inside these commands only, so every other command
starts without loading it.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from featurestore.cli.app import CliContext
from featurestore.cli.exit_codes import CANNOT_LISTEN

_WORKER_HEALTHCHECK_SECONDS = 60


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
    /metrics over HTTP.

    Prints the URL once it listens; exits with 4 when it cannot listen on HOST:PORT (the port is
    in use, or the address is not available or not permitted)."""
    import uvicorn  # the web stack loads for this command only (see the module docstring)
    from uvicorn.supervisors import Multiprocess

    from api.app import REPO_ENV, create_app

    repo = state.repo.resolve()
    # Open the config now, so a bad featurestore.yaml fails here with one clear line.
    store = state.store
    project = store.project
    # Listening before uvicorn starts turns "port in use" into our own message and exit code
    # (uvicorn's would be 3, which means "the data failed a check" here), and gives the port
    # really bound (--port 0) for the start-up line.
    sock = listen(host, port)
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level}
    if workers == 1:
        config = uvicorn.Config(create_app(store), access_log=False, **options)
    else:
        # Several workers: uvicorn imports the factory in each process, which opens its own store.
        state.close()
        os.environ[REPO_ENV] = str(repo)
        config = uvicorn.Config(
            "api.app:app_from_env",
            factory=True,
            workers=workers,
            access_log=False,
            # A worker still importing its store on a busy machine can miss uvicorn's 5 s
            # liveness ping, and be killed and restarted over and over.
            timeout_worker_healthcheck=_WORKER_HEALTHCHECK_SECONDS,
            **options,
        )
    url = base_url(host, int(sock.getsockname()[1]))
    click.echo(f"Serving {project} on {url} (docs: {url}/docs)")
    server = uvicorn.Server(config)
    try:
        if workers == 1:
            server.run(sockets=[sock])
            if not server.started:
                raise click.ClickException("the server did not start; see the messages above")
        else:
            Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:  # as uvicorn.run: Ctrl-C is the normal way to stop
        pass
    finally:
        sock.close()


class CannotListenError(click.ClickException):
    """``serve`` cannot listen on its address (exit code :data:`CANNOT_LISTEN`)."""

    exit_code = CANNOT_LISTEN


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for uvicorn to listen on (bound as uvicorn binds:
    SO_REUSEADDR, inheritable by worker processes); :class:`CannotListenError` naming the
    address and the reason when it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Linux refuses the bind itself when another socket listens on the port.
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        address = base_url(host, port).removeprefix("http://")
        if exc.errno == errno.EADDRINUSE:
            raise CannotListenError(
                f"cannot serve on {address}: the port is already in use (another "
                "`featurestore serve`?); stop that process or pass another --port"
            ) from None
        reason = exc.strerror or str(exc)
        raise CannotListenError(
            f"cannot serve on {address}: {reason}; pass a --host of this machine "
            "(127.0.0.1, 0.0.0.0) and a --port it may use (above 1023 without privileges)"
        ) from None
    sock.set_inheritable(True)
    return sock


def base_url(host: str, port: int) -> str:
    """``http://host:port``, with brackets around an IPv6 host."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


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
