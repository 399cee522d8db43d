"""Data quality commands: ``validate``, ``stats`` and ``drift``.

Exit codes: 0 when the data passed, 1 on an error, and
:data:`~featurestore.cli.exit_codes.FINDING` (3) when a validation failed or a feature drifted, so a pipeline can tell "bad data" from "broken run".
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from featurestore.cli.app import CliContext
from featurestore.cli.exit_codes import FINDING
from featurestore.cli.online import parse_timestamp
from featurestore.errors import QualityError
from featurestore.quality.history import StoredStatistics, window_label
from featurestore.quality.plot import write_drift_plot
from featurestore.quality.result import ValidationResult
from featurestore.quality.windows import Window, parse_window


def register(cli: click.Group) -> None:
    """Attach the quality commands to ``cli``."""
    for command in (validate, stats, drift):
        cli.add_command(command)


def window_option(
    ctx: click.Context | None, param: click.Parameter | None, value: str | None
) -> Window | None:
    """Click callback: ``START..END`` (see :mod:`featurestore.quality.windows`)."""
    if value is None:
        return None
    try:
        return parse_window(value)
    except QualityError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _window_options(command: Any) -> Any:
    command = click.option(
        "--end", callback=parse_timestamp, default=None, help="Last event time (inclusive)."
    )(command)
    return click.option(
        "--start", callback=parse_timestamp, default=None, help="First event time (inclusive)."
    )(command)


def _emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


# -- validate ------------------------------------------------------------------------------------


@click.command()
@click.argument("view")
@_window_options
@click.option("--history", is_flag=True, help="Show the recorded validations instead.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="With --history."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def validate(
    state: CliContext,
    view: str,
    start: datetime | None,
    end: datetime | None,
    history: bool,
    limit: int,
    as_json: bool,
) -> None:
    """Validate VIEW's source rows in [--start, --end] against its expectation suite and the
    quick schema and null-rate checks; the result is recorded. With --history, list the
    recorded validations (materialize, push and on demand), newest last. Exits 3 when the
    validation failed."""
    if history:
        results = state.store.validation_history(view, limit=limit)
        if as_json:
            _emit_json([r.to_dict() for r in results])
            return
        _print_history(state, view, results)
        return
    result = state.store.validate(view, start, end)
    if as_json:
        _emit_json(result.to_dict())
    else:
        _print_validation(state, result)
    if not result.success:
        sys.exit(FINDING)


def _print_validation(state: CliContext, result: ValidationResult) -> None:
    console = state.console
    console.print(f"validation #{result.id}: {result.summary()}", markup=False)
    if result.skipped:
        console.print(f"  suite not run: {result.skipped}", markup=False)
    table = Table("check", "column", "outcome", "observed")
    for check in result.checks:
        observed = ", ".join(f"{k}={v}" for k, v in sorted(check.observed.items()))
        table.add_row(
            *_plain(check.check, check.column or "", "ok" if check.success else "FAILED", observed)
        )
    console.print(table)
    if not result.success:
        console.print(result.describe_failures(), markup=False)


def _print_history(state: CliContext, view: str, results: list[ValidationResult]) -> None:
    if not results:
        state.console.print(f"no validation recorded for {view!r}", markup=False)
        return
    table = Table("id", "started", "trigger", "mode", "rows", "outcome", "failed checks")
    for r in results:
        failed = ", ".join(
            c.check if c.column is None else f"{c.check}({c.column})" for c in r.failures
        )
        table.add_row(
            *_plain(
                str(r.id),
                r.started_at.isoformat(timespec="seconds"),
                r.trigger,
                r.mode,
                f"{r.rows:,}",
                "passed" if r.success else "FAILED",
                failed,
            )
        )
    state.console.print(table)


# -- stats ---------------------------------------------------------------------------------------


@click.command()
@click.argument("view")
@_window_options
@click.option("--history", is_flag=True, help="List the statistics recorded for VIEW instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stats(
    state: CliContext,
    view: str,
    start: datetime | None,
    end: datetime | None,
    history: bool,
    as_json: bool,
) -> None:
    """Per-feature statistics of VIEW's source rows in [--start, --end]: count, null rate,
    min, max, mean, standard deviation, quantiles and top values, computed in the offline
    engine and recorded for the window (compare windows with --history or `drift`)."""
    if history:
        found = state.store.statistics_history(view)
        if as_json:
            _emit_json([s.to_dict() for s in found])
            return
        table = Table("id", "computed", "window", "rows")
        for s in found:
            table.add_row(
                *_plain(
                    str(s.id),
                    s.computed_at.isoformat(timespec="seconds"),
                    window_label(s.window_start, s.window_end),
                    f"{s.profile.rows:,}",
                )
            )
        state.console.print(table)
        return
    result = state.store.statistics(view, start, end)
    if as_json:
        _emit_json(result.to_dict())
        return
    _print_statistics(state, result)


def _print_statistics(state: CliContext, stored: StoredStatistics) -> None:
    profile = stored.profile
    state.console.print(
        f"statistics #{stored.id} of {stored.label}: {profile.rows:,} rows in "
        f"{profile.seconds:.2f} s",
        markup=False,
    )
    table = Table(
        "feature", "nulls", "min", "max", "mean", "std", "p05", "p50", "p95", "top values"
    )
    for name, column in profile.columns.items():
        q = column.quantiles
        top = ", ".join(f"{_cell(v)} ({n:,})" for v, n in column.top_values[:3])
        table.add_row(
            *_plain(
                name,
                f"{column.null_rate:.1%}",
                _cell(column.min),
                _cell(column.max),
                _cell(column.mean),
                _cell(column.stddev),
                _cell(q.get("p05")),
                _cell(q.get("p50")),
                _cell(q.get("p95")),
                top,
            )
        )
    state.console.print(table)


def _plain(*cells: str) -> list[Text]:
    """Table cells shown as they are (values like ``[quality]`` are not rich markup)."""
    return [Text(cell) for cell in cells]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# -- drift ---------------------------------------------------------------------------------------


@click.command()
@click.argument("view")
@click.option("--reference", "dataset", default=None, help="A saved training dataset.")
@click.option("--reference-window", callback=window_option, default=None, help="Or a window: A..B.")
@click.option(
    "--current-window", callback=window_option, required=True, help="The window to check: C..D."
)
@click.option("--psi", type=float, default=None, help="PSI threshold (default: config, 0.2).")
@click.option("--ks", type=float, default=None, help="KS threshold (default: config, 0.1).")
@click.option(
    "--chi2-p-value",
    type=float,
    default=None,
    help="Chi-square p-value threshold (default: config, 0.01).",
)
@click.option(
    "--null-rate",
    type=float,
    default=None,
    help="Null-rate change threshold (default: config, 0.1).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write reference vs current histograms per feature (.html or .png).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def drift(
    state: CliContext,
    view: str,
    dataset: str | None,
    reference_window: Window | None,
    current_window: Window,
    psi: float | None,
    ks: float | None,
    chi2_p_value: float | None,
    null_rate: float | None,
    plot: Path | None,
    as_json: bool,
) -> None:
    """Compare VIEW's feature distributions in --current-window with a saved dataset
    (--reference) or another window (--reference-window): PSI and KS for numeric features,
    PSI and chi-square for categorical ones, and the change of each null rate. Exits 3 when any
    feature drifted."""
    if (dataset is None) == (reference_window is None):
        raise click.UsageError("pass either --reference DATASET or --reference-window A..B")
    store = state.store
    thresholds = store.quality.thresholds_with(
        psi=psi, ks=ks, chi2_p_value=chi2_p_value, null_rate=null_rate
    )
    outcome = store.drift(
        view,
        current_window=current_window,
        reference_dataset=dataset,
        reference_window=reference_window,
        thresholds=thresholds,
    )
    if plot is not None:
        written = write_drift_plot(outcome.report, plot)
        click.echo(f"plot written to {written}", err=True)
    if as_json:
        _emit_json(outcome.to_dict())
    else:
        state.console.print(f"drift check #{outcome.id}", markup=False)
        state.console.print(outcome.report.summary(), markup=False)
    if outcome.report.drifted:
        sys.exit(FINDING)
