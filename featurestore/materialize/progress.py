"""What a materialization run reports: numbers per view, a summary, and a live progress bar.

:class:`ViewReport` and :class:`MaterializationReport` are plain data the caller gets back;
:func:`progress_for` picks how the run shows itself while it works: a rich progress bar on stderr
(rows written of the total, per view) when stderr is a terminal or ``progress=True``, nothing
otherwise. The end summary goes to the same stream whenever the bar was shown.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


@dataclass
class ViewReport:
    """One view version's run.

    ``rows_read``: source rows that qualified; ``keys``: rows sent online (one per entity key);
    ``written``: of those, rows the store took (an identical re-write counts as written);
    ``skipped_older``: rows it kept its own, newer, value for; ``expired``: rows not written
    because they were already past ``ttl + expiry_grace``; ``watermark_end``: the view's watermark
    after the run (``None``: none); ``validation``: the summary of the run's validation.
    """

    view: str
    version: int
    rows_read: int = 0
    keys: int = 0
    written: int = 0
    skipped_older: int = 0
    expired: int = 0
    seconds: float = 0.0
    watermark_end: datetime | None = None
    validation: str = ""

    @property
    def rows_per_second(self) -> float:
        """Source rows processed per second of the view's run."""
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def summary_line(self) -> str:
        line = _line(
            f"{self.view} v{self.version}",
            self.rows_read,
            self.written,
            self.skipped_older,
            self.seconds,
            self.expired,
        )
        return f"{line}\n  validation: {self.validation}" if self.validation else line


@dataclass
class MaterializationReport:
    """What a :meth:`~featurestore.FeatureStore.materialize` call did, view by view.

    report = store.materialize(start, end)
    print(report.summary())
    report.views[0].written
    """

    project: str
    views: list[ViewReport] = field(default_factory=list)

    @property
    def total(self) -> ViewReport:
        """Every view's numbers added up (``view`` is ``"total"``, ``version`` 0)."""
        return ViewReport(
            view="total",
            version=0,
            rows_read=sum(v.rows_read for v in self.views),
            keys=sum(v.keys for v in self.views),
            written=sum(v.written for v in self.views),
            skipped_older=sum(v.skipped_older for v in self.views),
            expired=sum(v.expired for v in self.views),
            seconds=sum(v.seconds for v in self.views),
        )

    def view(self, name: str) -> ViewReport:
        """The report of the view called ``name``; KeyError if it was not materialized."""
        for report in self.views:
            if report.view == name:
                return report
        raise KeyError(name)

    def summary(self) -> str:
        """One line per view and a total: rows read, keys written, skipped (older), s, rows/s."""
        lines = [view.summary_line() for view in self.views]
        total = self.total
        lines.append(
            _line(
                f"total ({len(self.views)} views)",
                total.rows_read,
                total.written,
                total.skipped_older,
                total.seconds,
                total.expired,
            )
        )
        return "\n".join(lines)


def _line(
    label: str, rows_read: int, written: int, skipped: int, seconds: float, expired: int = 0
) -> str:
    rate = rows_read / seconds if seconds > 0 else 0.0
    gone = f", {expired:,} already expired (not written)" if expired else ""
    return (
        f"{label}: {rows_read:,} rows read, {written:,} keys written, {skipped:,} skipped (older)"
        f"{gone}, {seconds:.2f} s, {rate:,.0f} rows/s"
    )


class ProgressDisplay:
    """Shows a run as it goes; this base class shows nothing (not a terminal, or turned off).

    Use it as a context manager: the display stops however the run ends.
    """

    def start(self) -> None:
        """The run begins."""

    def start_view(self, label: str, total: int) -> None:
        """A view begins: ``total`` rows will be sent to the online store."""

    def advance(self, rows: int) -> None:
        """``rows`` more rows of the current view were written."""

    def finish(self, report: MaterializationReport) -> None:
        """The run ended successfully."""

    def stop(self) -> None:
        """The run ended, successfully or not."""

    def __enter__(self) -> ProgressDisplay:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RichProgress(ProgressDisplay):
    """A rich progress bar per view on stderr, then the summary."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console if console is not None else Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self._console,
            # No refresh thread: redrawn on each update, so nothing keeps running after a failure.
            auto_refresh=False,
        )
        self._task: TaskID | None = None

    def start(self) -> None:
        self._progress.start()

    def start_view(self, label: str, total: int) -> None:
        self._task = self._progress.add_task(label, total=total)
        self._progress.refresh()

    def advance(self, rows: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, rows)
            self._progress.refresh()

    def finish(self, report: MaterializationReport) -> None:
        self._progress.stop()
        self._console.print(report.summary(), highlight=False, soft_wrap=True)

    def stop(self) -> None:
        self._progress.stop()


def shows_progress(progress: bool | None) -> bool:
    """Whether a run with ``progress`` shows a bar (and so prints its own summary):
    ``None`` means when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else progress


def progress_for(progress: bool | None) -> ProgressDisplay:
    """The display for ``progress`` (``None``: a bar when stderr is a terminal)."""
    return RichProgress() if shows_progress(progress) else ProgressDisplay()
