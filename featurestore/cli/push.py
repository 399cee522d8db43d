"""``featurestore push SOURCE FILE``: push rows from a Parquet, CSV or JSON file."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.cli.app import CliContext
from featurestore.errors import PushError
from featurestore.push import PushMode


def register(cli: click.Group) -> None:
    """Attach ``push`` to ``cli``."""
    cli.add_command(push)


@click.command()
@click.argument("source")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--to",
    type=click.Choice([mode.value for mode in PushMode]),
    default=PushMode.ONLINE.value,
    show_default=True,
    help="Where the rows go.",
)
@click.pass_obj
def push(state: CliContext, source: str, path: Path, to: str) -> None:
    """Push the rows of PATH (.parquet, .csv or .json records) to push source SOURCE.

    Columns use the source's names; the rows are checked against every view reading SOURCE
    before anything is written.
    """
    report = state.store.push(source, _read(path), to)
    state.console.print(report.summary())


def _read(path: Path) -> pa.Table | pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".json", ".jsonl"):
            return pd.read_json(path, orient="records", lines=suffix == ".jsonl")
    except (OSError, ValueError, pa.ArrowInvalid) as exc:
        raise PushError(f"cannot read {path}: {exc}") from None
    raise PushError(f"{path}: push reads .parquet, .csv, .json or .jsonl files")
