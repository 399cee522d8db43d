"""Commands that read feature values: get-historical-features."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import pyarrow.parquet as pq

from featurestore.cli.app import CliContext


def register(cli: click.Group) -> None:
    """Attach the retrieval commands to ``cli``."""
    cli.add_command(get_historical_features)


F = TypeVar("F", bound=Callable[..., Any])


def feature_options(command: F) -> F:
    """``--features`` (repeatable, comma-separated) and ``--feature-service``, exactly one used."""
    command = click.option(
        "--feature-service", "service", default=None, help="A registered feature service instead."
    )(command)
    return click.option(
        "--features",
        "features",
        multiple=True,
        help="view:feature references (repeat or comma-separate).",
    )(command)


def selected_references(features: tuple[str, ...], service: str | None) -> list[str]:
    """The references of ``--features``, checking that exactly one of the two options is used."""
    references = split_features(features)
    if bool(references) == bool(service):
        raise click.UsageError("pass either --features or --feature-service")
    return references


def split_features(values: tuple[str, ...]) -> list[str]:
    """``--features a:x,b:y --features c:z`` -> ``["a:x", "b:y", "c:z"]``."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


@click.command(name="get-historical-features")
@click.option(
    "--entity-df",
    "entity_df",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Parquet file of entity rows: join keys and an event_timestamp column.",
)
@feature_options
@click.option("--full-feature-names", is_flag=True, help="Name columns view__feature.")
@click.option(
    "--filter-by-created-timestamp",
    is_flag=True,
    help="Leave out rows created after the entity row's timestamp (or with no created "
    "timestamp): only what existed at prediction time.",
)
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Parquet file to write.",
)
@click.pass_obj
def get_historical_features(
    state: CliContext,
    entity_df: Path,
    features: tuple[str, ...],
    service: str | None,
    full_feature_names: bool,
    filter_by_created_timestamp: bool,
    output: Path,
) -> None:
    """Build a point-in-time correct training frame and write it as Parquet."""
    references = selected_references(features, service)
    started = time.perf_counter()
    job = state.store.get_historical_features(
        entity_df=str(entity_df.resolve()),
        features=service if service else references,
        full_feature_names=full_feature_names,
        filter_by_created_timestamp=filter_by_created_timestamp,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    job.to_parquet(output)
    seconds = time.perf_counter() - started
    meta = pq.read_metadata(output)
    state.console.print(
        f"Wrote {meta.num_rows:,} rows x {meta.num_columns} columns to {output} in {seconds:.2f} s"
    )
