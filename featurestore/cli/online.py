"""Commands of the online path: materialize, materialize-incremental, get-online-features,
consistency-check and teardown."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import click
from rich.table import Table

from featurestore.cli.app import CliContext
from featurestore.cli.exit_codes import ERROR
from featurestore.cli.retrieval import feature_options, selected_references, split_features
from featurestore.cli.watch import run_watch
from featurestore.errors import EntityFrameError, ObjectNotFoundError, QualityError
from featurestore.materialize import MaterializationReport
from featurestore.materialize.progress import shows_progress
from featurestore.quality.windows import parse_instant
from featurestore.references import parse_reference
from featurestore.transform.operations import request_types
from featurestore.types import ValueType


def register(cli: click.Group) -> None:
    """Attach the online commands to ``cli``."""
    for command in (
        materialize,
        materialize_incremental,
        get_online_features,
        consistency_check,
        teardown,
    ):
        cli.add_command(command)


def parse_timestamp(
    ctx: click.Context | None, param: click.Parameter | None, value: str | None
) -> datetime | None:
    """Click callback: an ISO-8601 date or datetime (naive means UTC), ``now``, ``today``, or a
    relative instant such as ``now-3d`` (see :func:`featurestore.quality.windows.parse_instant`)."""
    if value is None:
        return None
    try:
        return parse_instant(value)
    except QualityError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _views_option(values: tuple[str, ...]) -> list[str] | None:
    names = split_features(values)
    return names or None


views_option = click.option(
    "--views",
    "views",
    multiple=True,
    help="Feature views to work on (repeat or comma-separate; default: all online views).",
)


@click.command()
@click.argument("start", callback=parse_timestamp, required=False)
@click.argument("end", callback=parse_timestamp, required=False)
@views_option
@click.option(
    "--watch",
    is_flag=True,
    help="Keep running: materialize a view as soon as new data lands in its source.",
)
@click.option(
    "--debounce",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="With --watch: seconds to gather a burst of changes into one run.",
)
@click.pass_obj
def materialize(
    state: CliContext,
    start: datetime | None,
    end: datetime | None,
    views: tuple[str, ...],
    watch: bool,
    debounce: float,
) -> None:
    """Write each view's latest values with event time in [START, END] to the online store.

    START and END are ISO-8601 datetimes (naive ones are UTC), 'now', 'today', or relative
    instants such as now-7d or today-1w. With --watch (and no START/END), first catch up from
    each view's watermark to now, then materialize each view whose source gets new files (or
    whose table gets a new version), as they land, until interrupted.
    """
    if watch:
        if start is not None or end is not None:
            raise click.UsageError(
                "--watch runs from each view's watermark to now: give no START/END"
            )
        run_watch(state, _views_option(views), debounce)
        return
    if start is None or end is None:
        raise click.UsageError("give START and END (or --watch)")
    report = state.store.materialize(start, end, _views_option(views))
    _print_summary(state, report)


@click.command(name="materialize-incremental")
@click.argument("end", callback=parse_timestamp)
@views_option
@click.pass_obj
def materialize_incremental(state: CliContext, end: datetime, views: tuple[str, ...]) -> None:
    """Write what arrived since each view's watermark (late rows included) up to END."""
    report = state.store.materialize_incremental(end, _views_option(views))
    _print_summary(state, report)


def _print_summary(state: CliContext, report: MaterializationReport) -> None:
    # On a terminal the progress display has printed the summary under its bar already.
    if not shows_progress(None):
        state.console.print(report.summary())


@click.command(name="get-online-features")
@feature_options
@click.option(
    "--entity",
    "entity_rows",
    multiple=True,
    required=True,
    help="One entity row: key=value[,key2=value2]. Repeat for several rows.",
)
@click.option(
    "--request",
    "request_values",
    multiple=True,
    help="Request values of on-demand views: name=value[,name2=value2]. Once for every row, "
    "or once per --entity row.",
)
@click.option("--full-feature-names", is_flag=True, help="Name columns view__feature.")
@click.option("--json", "as_json", is_flag=True, help="Print Feast's feature-server JSON.")
@click.pass_obj
def get_online_features(
    state: CliContext,
    features: tuple[str, ...],
    service: str | None,
    entity_rows: tuple[str, ...],
    request_values: tuple[str, ...],
    full_feature_names: bool,
    as_json: bool,
) -> None:
    """Look features up online for one or more entity rows."""
    references = selected_references(features, service)
    store = state.store
    if service:
        references = store.get_feature_service(service).feature_refs()
    key_types = _key_types(state, references)
    rows = [_parse_entity(text, key_types) for text in entity_rows]
    if request_values:
        if len(request_values) not in (1, len(rows)):
            raise click.BadParameter(
                f"give --request once (for every row) or once per --entity row ({len(rows)}), "
                f"not {len(request_values)} times",
                param_hint="'--request'",
            )
        types = request_types(state.store, references)
        parsed = [_parse_entity(text, types, "--request") for text in request_values]
        rows = [{**row, **parsed[min(i, len(parsed) - 1)]} for i, row in enumerate(rows)]
    response = store.get_online_features(
        references, entity_rows=rows, full_feature_names=full_feature_names
    )
    if as_json:
        click.echo(json.dumps(response.to_feast_json(), indent=2))
        return
    values, statuses, stamps = response.to_dict(), response.statuses, response.event_timestamps
    table = Table("row", "column", "value", "status", "event timestamp")
    for row in range(len(response)):
        for column in response.columns:
            stamp = stamps[column][row]
            table.add_row(
                str(row),
                column,
                repr(values[column][row]),
                statuses[column][row].value,
                "" if stamp is None else stamp.isoformat(),
            )
    state.console.print(table)


def _key_types(state: CliContext, references: list[str]) -> dict[str, ValueType | None]:
    """The declared type of each join key the references need (to parse ``--entity`` text)."""
    types: dict[str, ValueType | None] = {}
    for ref in {(r.view, r.version) for r in map(parse_reference, references)}:
        try:
            view = state.store.get_feature_view(*ref)
        except ObjectNotFoundError:
            continue  # the lookup itself reports the unknown view
        for key, declared in view.join_key_types.items():
            if types.get(key) is None:
                types[key] = declared
    return types


def _parse_entity(
    text: str, key_types: Mapping[str, ValueType | None], option: str = "--entity"
) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(
                f"{text!r}: write key=value[,key2=value2]", param_hint=f"'{option}'"
            )
        row[key] = _parse_key_value(key, raw.strip(), key_types.get(key), option)
    return row


def _parse_key_value(key: str, raw: str, declared: ValueType | None, option: str) -> Any:
    name = None if declared is None else declared.name
    try:
        if name in {"Int32", "Int64"}:
            return int(raw)
        if name in {"Float32", "Float64"}:
            return float(raw)
        if name == "Bool":
            if raw.lower() not in {"true", "false", "1", "0"}:
                raise ValueError(raw)
            return raw.lower() in {"true", "1"}
        if name == "Bytes":
            return raw.encode()
        if name == "UnixTimestamp":
            return datetime.fromisoformat(raw)
    except ValueError:
        raise EntityFrameError(f"{option} {key}={raw}: {key!r} is {name}") from None
    if name is None and raw.lstrip("-").isdigit():
        return int(raw)  # an untyped key: digits are most likely an integer id
    return raw


@click.command(name="consistency-check")
@views_option
@click.option(
    "--sample", type=click.IntRange(min=1), default=1000, show_default=True, help="Keys per view."
)
@click.option(
    "--as-of",
    "as_of",
    callback=parse_timestamp,
    default=None,
    help="Instant to compare at (default: now).",
)
@click.option("--seed", type=int, default=None, help="Seed of the key sample (reproducible).")
@click.pass_obj
def consistency_check(
    state: CliContext,
    views: tuple[str, ...],
    sample: int,
    as_of: datetime | None,
    seed: int | None,
) -> None:
    """Compare online lookups with a historical retrieval at one instant, per feature.

    Exits with code 1 when any value differs or is null on one side only.
    """
    report = state.store.consistency_check(
        _views_option(views), sample=sample, as_of=as_of, seed=seed
    )
    click.echo(report.render())
    if not report.ok:
        click.echo(report.summary(), err=True)
        sys.exit(ERROR)


@click.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def teardown(state: CliContext, yes: bool) -> None:
    """Remove all of the project's online data (the registry and sources stay)."""
    project = state.store.project
    if not yes:
        click.confirm(f"Remove all online data of project {project!r}?", abort=True)
    removed = state.store.teardown()
    state.console.print(f"Removed {removed:,} keys of project {project!r} from the online store.")
