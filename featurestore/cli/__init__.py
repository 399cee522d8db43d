"""The ``featurestore`` command line. Every command goes through the :class:`FeatureStore` facade.

Errors print as one line on stderr with a non-zero exit code; ``--debug`` (or
``FEATURESTORE_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from featurestore.cli.access import register as _register_access
from featurestore.cli.app import accept_repo_after_commands, cli
from featurestore.cli.config import register as _register_config
from featurestore.cli.definitions import register as _register_definitions
from featurestore.cli.exit_codes import ERROR
from featurestore.cli.info import register as _register_info
from featurestore.cli.lineage import register as _register_lineage
from featurestore.cli.online import register as _register_online
from featurestore.cli.push import register as _register_push
from featurestore.cli.quality import register as _register_quality
from featurestore.cli.removal import register as _register_removal
from featurestore.cli.retrieval import register as _register_retrieval
from featurestore.cli.scaffold import register as _register_scaffold
from featurestore.cli.serve import register as _register_serve
from featurestore.cli.status import register as _register_status
from featurestore.cli.stream import register as _register_stream
from featurestore.cli.ui import register as _register_ui
from featurestore.errors import FeatureStoreError

_register_access(cli)
_register_config(cli)
_register_definitions(cli)
_register_info(cli)
_register_lineage(cli)
_register_online(cli)
_register_push(cli)
_register_quality(cli)
_register_removal(cli)
_register_retrieval(cli)
_register_scaffold(cli)
_register_serve(cli)
_register_status(cli)
_register_stream(cli)
_register_ui(cli)
accept_repo_after_commands(cli)

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn every error into one readable line and exit code 1 (the codes are
    listed in :mod:`featurestore.cli.exit_codes`)."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("FEATURESTORE_DEBUG") == "1"
    try:
        cli.main(args=args, prog_name="featurestore", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FeatureStoreError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"Error: {_one_line(str(exc))}", err=True)
        sys.exit(ERROR)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        click.echo(
            f"Error: unexpected {type(exc).__name__}: {_one_line(str(exc))} "
            "(run with --debug for the traceback)",
            err=True,
        )
        sys.exit(ERROR)


def _one_line(message: str) -> str:
    parts = [line.strip() for line in message.splitlines() if line.strip()]
    text = ""
    for part in parts:
        text += part if not text else (" " if text.endswith(":") else "; ") + part
    return text
