"""``featurestore config schema`` and ``featurestore config show``."""

from __future__ import annotations

import click

from featurestore.cli.app import CliContext
from featurestore.config import load_config
from featurestore.config_show import effective_yaml, json_schema


def register(cli: click.Group) -> None:
    """Attach the ``config`` group to ``cli``."""
    cli.add_command(config_group)


@click.group(name="config")
def config_group() -> None:
    """The settings of featurestore.yaml."""


@config_group.command(name="schema")
def schema_command() -> None:
    """Print the JSON Schema of featurestore.yaml (point your editor's YAML support at it)."""
    click.echo(json_schema())


@config_group.command(name="show")
@click.pass_obj
def show_command(state: CliContext) -> None:
    """Print the settings in effect (defaults filled in, ${VAR} expanded), secrets masked."""
    # The file alone, not the store: it is readable before `apply` and without a registry.
    click.echo(effective_yaml(load_config(state.repo)), nl=False)
