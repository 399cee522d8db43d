"""``featurestore version``: which release is installed (``--version`` says the same)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import click

from featurestore.errors import FeatureStoreError


def register(cli: click.Group) -> None:
    """Attach ``version`` to ``cli``."""
    cli.add_command(version_command)


@click.command(name="version")
def version_command() -> None:
    """Print the installed featurestore version (Feast users type `feast version`)."""
    try:
        installed = version("featurestore")
    except PackageNotFoundError:
        raise FeatureStoreError(
            "featurestore is imported from a source tree that is not installed, so it has no "
            "version: install it with `pip install -e .`"
        ) from None
    click.echo(f"featurestore {installed}")
