"""Commands that remove data the store owns: ``retention enforce`` and ``erase``."""

from __future__ import annotations

import sys

import click

from featurestore.cli.app import CliContext
from featurestore.cli.exit_codes import ERROR


def register(cli: click.Group) -> None:
    """Attach ``retention`` and ``erase`` to ``cli``."""
    cli.add_command(retention)
    cli.add_command(erase)


@click.group()
def retention() -> None:
    """Retention windows: how long the store keeps each view's rows."""


@retention.command("enforce")
@click.option("--dry-run", is_flag=True, help="Report what would be removed; remove nothing.")
@click.pass_obj
def enforce(state: CliContext, dry_run: bool) -> None:
    """Delete rows older than their view's retention window from the data the store owns.

    That is the online rows of every view version, the Parquet files pushed to the offline
    store, and saved datasets; the views' source files are never changed (retrieval filters
    their old rows instead). The run is recorded in the audit log.
    """
    report = state.store.enforce_retention(dry_run=dry_run)
    state.console.print(report.summary(), markup=False)


def _entity_pair(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"{text!r} is not KEY=VALUE (e.g. --entity driver_id=1001)", ctx=ctx, param=param
            )
        if key.strip() in pairs:
            raise click.BadParameter(
                f"join key {key.strip()!r} is given twice", ctx=ctx, param=param
            )
        pairs[key.strip()] = value
    return pairs


@click.command()
@click.option(
    "--entity",
    "entity",
    multiple=True,
    required=True,
    callback=_entity_pair,
    help="A join key and its value, KEY=VALUE; repeat for each key of a multi-key entity.",
)
@click.option("--dry-run", is_flag=True, help="Report what would be removed; remove nothing.")
@click.pass_obj
def erase(state: CliContext, entity: dict[str, str], dry_run: bool) -> None:
    """Remove one entity from everything the store owns, and check that nothing is left.

    The online store (every view keyed by the entity, every version), pushed offline data,
    saved datasets and files interrupted writes left lose the entity's rows, and the quality
    history of those views its feature values; the report lists the user-owned source files
    that still hold it. Values are typed per the key's declared type. Exits with 1 when the check
    still finds the entity.
    """
    report = state.store.erase(entity, dry_run=dry_run)
    state.console.print(report.summary(), markup=False)
    if not dry_run and not report.verified:
        sys.exit(ERROR)
