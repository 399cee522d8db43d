"""The root command group and the shared context (which repository, the opened store)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from featurestore.store import FeatureStore


class CliContext:
    """Lazily opens the store for the repository given by ``--repo``."""

    def __init__(self, repo: Path, token: str | None = None) -> None:
        self.repo = repo
        self.token = token
        self._store: FeatureStore | None = None
        # Piped output (grep, files) gets wide tables instead of names cut at 80 columns.
        self.console = Console(
            highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240
        )

    @property
    def store(self) -> FeatureStore:
        if self._store is None:
            self._store = FeatureStore(repo_path=self.repo, token=self.token)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--repo",
    "repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    envvar="FEATURESTORE_REPO",
    help="Feature repository (the folder with featurestore.yaml).",
)
@click.option(
    "--token",
    envvar="FEATURESTORE_TOKEN",
    default=None,
    help="API key to act as (default: $FEATURESTORE_TOKEN); see `featurestore access keys`.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="featurestore")
@click.pass_context
def cli(ctx: click.Context, repo: Path, token: str | None, debug: bool) -> None:
    """featurestore: versioned feature definitions, point-in-time training sets, online serving."""
    state = CliContext(repo, token or None)
    ctx.obj = state
    ctx.call_on_close(state.close)
