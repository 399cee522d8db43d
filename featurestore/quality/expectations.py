"""Running a view's Great Expectations suite on a batch, and reading GE's answer back.

Great Expectations (the ``quality`` extra) is imported on the first suite run only: it takes
about two seconds, and the rest of featurestore works without it. Every run goes through one
ephemeral GE context per process, built with analytics off and progress bars off (GE would
otherwise print tqdm bars to stderr); it holds no files and makes no network call.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import pyarrow as pa

from featurestore.errors import DefinitionError, ExtraNotInstalledError
from featurestore.quality.result import CheckOutcome, json_safe
from featurestore.quality.validation import expectation_columns

__all__ = [
    "INSTALL_HINT",
    "MAX_SAMPLES",
    "SuiteRunner",
    "describe_expectation",
    "load_great_expectations",
    "merge_expectation",
]

INSTALL_HINT = "pip install 'featurestore[quality]'"
MAX_SAMPLES = 10
# GE lists the first N unexpected values, not distinct ones: ask for more than MAX_SAMPLES so
# that a few repeated values still leave room for others.
_PARTIAL_UNEXPECTED = 100
_MAX_OBSERVED_ITEMS = 20
# Tags each expectation with its place in the suite: GE returns results in its own order.
_POSITION = "featurestore_position"
_OBSERVED_KEYS = (
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "missing_count",
    "observed_value",
)
# GE contexts and batch definitions are not documented as thread-safe; the API server may
# validate pushes from several threads.
_ge_lock = threading.Lock()


def load_great_expectations(needed_by: str) -> ModuleType:
    """The ``great_expectations`` module, or ExtraNotInstalledError saying that ``needed_by``
    needs it and what to install.

    Importing GE triggers Python's DeprecationWarnings for ``sre_constants`` and ``sre_parse``
    (imported by GE's own code); they are silenced here, so they never reach users or
    warnings-as-errors test runs.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message=r"module 'sre_(constants|parse)' is deprecated",
                category=DeprecationWarning,
            )
            import great_expectations
    except ImportError:
        raise ExtraNotInstalledError(
            f"{needed_by} needs Great Expectations, which is not installed: {INSTALL_HINT}"
        ) from None
    return great_expectations


@functools.cache
def _dataframe_batches() -> Any:
    """The whole-dataframe batch definition of the process's one ephemeral GE context."""
    gx = load_great_expectations("featurestore validation")
    # Lazy like the module itself: these live inside the optional, slow-to-import package.
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas("featurestore").add_dataframe_asset("batch")
    return asset.add_batch_definition_whole_dataframe("whole_batch")


class SuiteRunner:
    """One expectation suite, compiled for Great Expectations, run batch by batch.

    Construction imports GE (ExtraNotInstalledError when it is missing) and builds every
    expectation, raising DefinitionError naming ``owner`` for an unknown type or bad kwargs
    (GE itself would only log and drop such an expectation).
    """

    def __init__(self, suite_json: Mapping[str, Any], *, owner: str) -> None:
        self.name = str(suite_json["name"])
        self.owner = owner
        self._entries: list[dict[str, Any]] = list(suite_json["expectations"])
        self._columns = _columns_needed(self._entries)
        gx = load_great_expectations(f"{owner}: expectation suite {self.name!r}")
        self._suite = self._compile(gx)

    def _compile(self, gx: ModuleType) -> Any:
        # Lazy: a part of the optional package, imported only once a suite runs.
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )

        expectations = []
        for position, entry in enumerate(self._entries):
            config = {**entry, "meta": {**entry.get("meta", {}), _POSITION: position}}
            try:
                expectations.append(ExpectationConfiguration(**config).to_domain_obj())
            except Exception as err:  # GE's own errors and pydantic's, for any bad entry
                raise DefinitionError(
                    f"{self.owner}: expectation {position} ({entry['type']}) of suite "
                    f"{self.name!r} is not valid for Great Expectations {gx.__version__}: "
                    f"{_one_line(err)}"
                ) from None
        return gx.ExpectationSuite(name=self.name, expectations=expectations)

    def run(
        self, batch: pa.RecordBatch | pa.Table, features: Sequence[str]
    ) -> list[tuple[int, CheckOutcome]]:
        """Validate the ``features`` columns of ``batch`` (only those the suite names, when
        every expectation names its columns); one outcome per expectation, with its position
        in the suite, in suite order."""
        wanted = features if self._columns is None else self._columns
        present = [name for name in wanted if name in batch.schema.names]
        frame = batch.select(present).to_pandas()
        with _ge_lock:
            ge_batch = _dataframe_batches().get_batch(batch_parameters={"dataframe": frame})
            answer = ge_batch.validate(
                self._suite,
                result_format={
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": _PARTIAL_UNEXPECTED,
                },
            )
        results = json_safe(answer.to_json_dict())["results"]
        return sorted((self._outcome(result) for result in results), key=lambda pair: pair[0])

    def _outcome(self, result: Mapping[str, Any]) -> tuple[int, CheckOutcome]:
        config = result.get("expectation_config") or {}
        position = int((config.get("meta") or {})[_POSITION])
        entry = self._entries[position]
        details = result.get("result") or {}
        observed = {key: details[key] for key in _OBSERVED_KEYS if key in details}
        if isinstance(observed.get("observed_value"), list):
            observed["observed_value"] = observed["observed_value"][:_MAX_OBSERVED_ITEMS]
        error = _exception_message(result.get("exception_info"))
        if error is not None:
            observed["error"] = error
        success = bool(result.get("success")) and error is None
        observed["batches"], observed["failed_batches"] = 1, 0 if success else 1
        samples = _distinct(details.get("partial_unexpected_list") or [])
        return position, _build(entry["type"], entry["kwargs"], success, observed, samples)


def _columns_needed(entries: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """The columns a suite reads, or None when it needs every feature (a table expectation
    such as a column-set or row-count check). Handing GE fewer columns matters: it
    fingerprints each batch, by pickling it when a column (e.g. an array) is not hashable."""
    needed: list[str] = []
    for entry in entries:
        columns = expectation_columns(entry["kwargs"])
        if not columns or str(entry["type"]).startswith("expect_table_"):
            return None
        needed.extend(c for c in columns if c not in needed)
    return needed


def merge_expectation(first: CheckOutcome, second: CheckOutcome) -> CheckOutcome:
    """One outcome of an expectation for two batches: element, missing and unexpected counts
    add up, samples merge (distinct, at most ten), an aggregate's observed value is the first
    failing batch's; it fails if it failed on either batch (``mostly`` holds per batch)."""
    kept = first if not first.success or second.success else second
    observed = dict(kept.observed)
    a, b = first.observed, second.observed
    if "unexpected_count" in a or "unexpected_count" in b:
        for key in ("element_count", "unexpected_count", "missing_count"):
            if key in a or key in b:
                observed[key] = a.get(key, 0) + b.get(key, 0)
        basis = observed.get("element_count", 0) - observed.get("missing_count", 0)
        unexpected = observed.get("unexpected_count", 0)
        observed["unexpected_percent"] = 100 * unexpected / basis if basis else None
    observed["batches"] = a.get("batches", 1) + b.get("batches", 1)
    observed["failed_batches"] = a.get("failed_batches", 0) + b.get("failed_batches", 0)
    samples = _distinct([*first.samples, *second.samples])
    success = first.success and second.success
    return _build(first.check, first.kwargs, success, observed, samples)


def _build(
    check: str,
    kwargs: dict[str, Any],
    success: bool,
    observed: dict[str, Any],
    samples: list[Any],
) -> CheckOutcome:
    column = kwargs.get("column") if isinstance(kwargs.get("column"), str) else None
    message = describe_expectation(check, kwargs, observed, samples, success)
    return CheckOutcome(check, column, success, "expectation", kwargs, observed, samples, message)


def describe_expectation(
    check: str,
    kwargs: Mapping[str, Any],
    observed: Mapping[str, Any],
    samples: Sequence[Any],
    success: bool,
) -> str:
    """One readable line, e.g. ``conv_rate: 1,000 of 4,000 values (25.0%) not between 0 and
    1; e.g. 2.0, 7.5`` or ``conv_rate: mean 2.47 not between 0 and 0.6``."""
    if "error" in observed:
        text = f"{check} could not be evaluated ({observed['error']})"
    elif "unexpected_count" in observed:
        text = _row_level(check, kwargs, observed)
    else:
        text = _aggregate(check, kwargs, observed, success)
    failed, batches = observed.get("failed_batches", 0), observed.get("batches", 1)
    if failed and batches > 1:
        text += f" (failed on {failed:,} of {batches:,} batches)"
    if samples:
        text += "; e.g. " + ", ".join(_sample(value) for value in samples)
    return f"{_subject(kwargs)}: {text}"


def _row_level(check: str, kwargs: Mapping[str, Any], observed: Mapping[str, Any]) -> str:
    missing = observed.get("missing_count") or 0
    basis = (observed.get("element_count") or 0) - missing
    unexpected = observed.get("unexpected_count") or 0
    share = f"{100 * unexpected / basis:.1f}%" if basis else "n/a"
    values = "non-null values" if missing else "values"
    describe = _ROW_PHRASES.get(check)
    phrase = describe(kwargs) if describe is not None else f"unexpected ({check})"
    text = f"{unexpected:,} of {basis:,} {values} ({share}) {phrase}"
    mostly = kwargs.get("mostly")
    if isinstance(mostly, int | float) and mostly < 1:
        text += f" (at most {100 * (1 - mostly):.4g}% allowed)"
    return text


def _aggregate(
    check: str, kwargs: Mapping[str, Any], observed: Mapping[str, Any], success: bool
) -> str:
    value = observed.get("observed_value")
    statistic = re.fullmatch(r"expect_(?:column|table)_(\w+?)_to_be_between", check)
    if statistic and ("min_value" in kwargs or "max_value" in kwargs):
        negation = "" if success else " not"
        name = statistic.group(1).replace("_", " ")
        return f"{name} {_value(value)}{negation} {_range(kwargs)}"
    outcome = "passed" if success else "failed"
    return f"{check} {outcome}" + ("" if value is None else f" (observed {_value(value)})")


def _range(kwargs: Mapping[str, Any]) -> str:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and high is not None:
        return f"between {_value(low)} and {_value(high)}"
    if low is not None:
        return f"above {_value(low)}" if kwargs.get("strict_min") else f"at least {_value(low)}"
    if high is not None:
        return f"below {_value(high)}" if kwargs.get("strict_max") else f"at most {_value(high)}"
    return "in range"


def _listed(values: object) -> str:
    if not isinstance(values, list):
        return _value(values)
    shown = ", ".join(_sample(v) for v in values[:MAX_SAMPLES])
    more = f", ... {len(values) - MAX_SAMPLES} more" if len(values) > MAX_SAMPLES else ""
    return f"[{shown}{more}]"


def _pair(kwargs: Mapping[str, Any], relation: str) -> str:
    return f"where {kwargs.get('column_A')} is not {relation} {kwargs.get('column_B')}"


_ROW_PHRASES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "expect_column_values_to_be_between": lambda k: f"not {_range(k)}",
    "expect_column_values_to_not_be_null": lambda k: "null",
    "expect_column_values_to_be_null": lambda k: "not null",
    "expect_column_values_to_be_in_set": lambda k: f"not in {_listed(k.get('value_set'))}",
    "expect_column_values_to_not_be_in_set": lambda k: f"in {_listed(k.get('value_set'))}",
    "expect_column_values_to_be_unique": lambda k: "not unique",
    "expect_column_values_to_match_regex": lambda k: f"not matching {k.get('regex')!r}",
    "expect_column_values_to_not_match_regex": lambda k: f"matching {k.get('regex')!r}",
    "expect_column_value_lengths_to_be_between": lambda k: f"with a length not {_range(k)}",
    "expect_column_values_to_be_of_type": lambda k: f"not of type {k.get('type_')}",
    "expect_column_values_to_be_in_type_list": lambda k: (
        f"not of a type in {_listed(k.get('type_list'))}"
    ),
    "expect_column_pair_values_a_to_be_greater_than_b": lambda k: _pair(
        k, "greater than or equal to" if k.get("or_equal") else "greater than"
    ),
    "expect_column_pair_values_to_be_equal": lambda k: _pair(k, "equal to"),
}


def _subject(kwargs: Mapping[str, Any]) -> str:
    if isinstance(kwargs.get("column"), str):
        return str(kwargs["column"])
    if "column_A" in kwargs or "column_B" in kwargs:
        return f"{kwargs.get('column_A')}, {kwargs.get('column_B')}"
    if isinstance(kwargs.get("column_list"), list):
        return ", ".join(str(c) for c in kwargs["column_list"])
    return "table"


def _value(value: object) -> str:
    """A bound or observed value: integral floats without the ``.0`` (``between 0 and 1``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    return _sample(value)


def _sample(value: object) -> str:
    """A sample value as a reader would type it: ``2.0``, ``'c'``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = f"{value:.6g}"
        return text if any(c in text for c in ".eni") else f"{text}.0"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _distinct(values: Sequence[Any]) -> list[Any]:
    """Up to MAX_SAMPLES distinct JSON-safe values, first seen first."""
    seen: set[str] = set()
    distinct: list[Any] = []
    for value in values:
        safe = json_safe(value)
        key = json.dumps(safe, sort_keys=True)
        if key not in seen:
            seen.add(key)
            distinct.append(safe)
            if len(distinct) == MAX_SAMPLES:
                break
    return distinct


def _exception_message(info: object) -> str | None:
    """GE's exception message for a result that raised, or None. GE nests the details per
    metric when a metric failed (``{metric_id: {"raised_exception": ...}}``)."""
    if not isinstance(info, Mapping):
        return None
    if info.get("raised_exception"):
        return _one_line(info.get("exception_message") or "an exception was raised")
    for value in info.values():
        if isinstance(value, Mapping) and value.get("raised_exception"):
            return _one_line(value.get("exception_message") or "an exception was raised")
    return None


def _one_line(message: object) -> str:
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())
