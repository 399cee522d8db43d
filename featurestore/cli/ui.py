"""``featurestore ui``: the web UI (Catalog, View, Lineage, Datasets, Audit) on a local port.

The same app as ``featurestore serve`` (the UI is under ``/ui`` of both); here ``/`` leads to the
UI, and a page request without a token acts as this command's own principal (``--token`` or
``$FEATURESTORE_TOKEN``), so it binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import click

from featurestore.cli.app import CliContext
from featurestore.cli.serve import base_url, listen


def register(cli: click.Group) -> None:
    """Attach ``ui`` to ``cli``."""
    cli.add_command(ui)


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind; anyone reaching it reads as this command's principal.",
)
@click.option("--port", default=8888, show_default=True, type=click.IntRange(0, 65535))
@click.pass_obj
def ui(state: CliContext, host: str, port: int) -> None:
    """Serve the web UI: search the catalog, look at a view's versions, statistics, drift and
    validations, the lineage graph, saved datasets and the audit log. Read-only.

    Prints the URL once it listens; exits with 4 when it cannot listen on HOST:PORT."""
    import uvicorn  # the web stack loads for this command only

    from api.app import create_app

    store = state.store
    project = store.project
    sock = listen(host, port)
    config = uvicorn.Config(
        create_app(store, local_ui=True),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )
    url = base_url(host, int(sock.getsockname()[1]))
    click.echo(f"UI of {project} on {url}/ui/ (acting as {store.principal.name})")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
        if not server.started:
            raise click.ClickException("the server did not start; see the messages above")
    except KeyboardInterrupt:  # Ctrl-C is the normal way to stop
        pass
    finally:
        sock.close()
