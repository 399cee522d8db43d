"""``featurestore status``: how fresh each online view is."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import click
from rich.table import Table

from featurestore.cli.app import CliContext
from featurestore.cli.exit_codes import FINDING


def register(cli: click.Group) -> None:
    """Attach ``status`` to ``cli``."""
    cli.add_command(status)


@click.command()
@click.option("--views", "views", multiple=True, help="Only these views (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def status(state: CliContext, views: tuple[str, ...], as_json: bool) -> None:
    """Per online view: last materialization, watermark, online freshness, stream lag.

    Exits 3 when a view's freshness objective is breached.
    """
    rows = state.store.status(list(views) or None)
    if as_json:
        click.echo(json.dumps([row.to_dict() for row in rows], indent=2))
    else:
        table = Table("view", "version", "last materialized", "watermark", "newest online",
                      "online age", "stream lag", "objective")  # fmt: skip
        for row in rows:
            age = _span(row.online_age)
            table.add_row(
                row.view,
                str(row.version),
                _moment(row.last_materialized),
                _moment(row.watermark),
                _moment(row.newest_online_event),
                f"[red]{age} (breached)[/red]" if row.breached else age,
                "-" if row.stream_lag is None else f"{row.stream_lag:,}",
                _span(row.objective),
            )
        state.console.print(table)
    if any(row.breached for row in rows):
        raise SystemExit(FINDING)


def _moment(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _span(span: timedelta | None) -> str:
    if span is None:
        return "-"
    seconds = int(span.total_seconds())
    if abs(seconds) < 120:
        return f"{seconds}s"
    if abs(seconds) < 7200:
        return f"{seconds // 60}m"
    if abs(seconds) < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
