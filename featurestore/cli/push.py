"""``featurestore push SOURCE FILE``: push rows from a Parquet, CSV or JSON file;
``featurestore compact``: merge the small files pushes leave offline."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.cli.app import CliContext
from featurestore.errors import PushError
from featurestore.offline.compaction import COVERED_GRACE_SECONDS
from featurestore.push import PushMode


def register(cli: click.Group) -> None:
    """Attach ``push`` and ``compact`` to ``cli``."""
    cli.add_command(push)
    cli.add_command(compact)


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


@click.command()
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="Push source to compact (repeatable; default: every one with pushed files).",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=COVERED_GRACE_SECONDS,
    show_default=True,
    help="Seconds a merged file is kept for readers that listed it before (then deleted).",
)
@click.pass_obj
def compact(state: CliContext, sources: tuple[str, ...], grace: float) -> None:
    """Merge the small Parquet files that pushes (and streams) leave in the offline store.

    Retrievals keep running meanwhile and see every row exactly once.
    """
    report = state.store.compact(list(sources) or None, grace_seconds=grace)
    if not report.sources:
        state.console.print("No pushed files to compact.")
        return
    for done in report.sources:
        state.console.print(
            f"{done.source}: {done.files_before} files -> {done.files_after} "
            f"({done.merged} merged into {len(done.written)}, {done.rows:,} rows, "
            f"{done.deleted} old files deleted) in {done.seconds:.2f} s"
        )
