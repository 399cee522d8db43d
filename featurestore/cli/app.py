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


_REPO_HELP = "Feature repository (the folder with featurestore.yaml)."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--repo",
    "repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    envvar="FEATURESTORE_REPO",
    help=_REPO_HELP,
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


def _repo_after_command(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    # The root group has already built the context (the store opens lazily), so a --repo typed
    # after the command simply points it elsewhere before anything is opened.
    state = ctx.find_object(CliContext)
    if value is not None and state is not None:
        state.repo = value


def accept_repo_after_commands(group: click.Group) -> None:
    """Let every command of ``group`` (and of its sub-groups) take ``--repo`` too, as users type
    it: ``featurestore serve --repo R`` means ``featurestore --repo R serve``."""
    for command in group.commands.values():
        if not any(param.name == "repo" for param in command.params):
            command.params.append(
                click.Option(
                    ["--repo"],
                    type=click.Path(file_okay=False, path_type=Path),
                    default=None,
                    expose_value=False,
                    callback=_repo_after_command,
                    help=_REPO_HELP,
                )
            )
        if isinstance(command, click.Group):
            accept_repo_after_commands(command)
