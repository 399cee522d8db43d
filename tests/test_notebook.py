"""The quickstart notebook runs from top to bottom and shows what its prose claims."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
XS_ENTITY_ROWS = 1_000


def _text_outputs(notebook: nbformat.NotebookNode) -> str:
    """Every stream and plain-text result of the executed notebook, joined."""
    parts: list[str] = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in {"execute_result", "display_data"}:
                parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Opt in to jupyter_core's platformdirs paths, so versions that still warn about the
    # migration do not (pytest turns warnings into errors).
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("FEATURESTORE_EXAMPLE_REPO", str(ROOT / "repo"))
    # The kernel is a separate process: make it import this checkout, whatever is installed.
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    repo_before = _snapshot(ROOT / "repo")

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the failing cell, on any error

    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    text = _text_outputs(notebook)

    assert "Plan: 7 added" in text
    assert "No changes (7 unchanged)." in text
    assert "on-demand offline equals online: True" in text
    assert "trip aggregates offline equals online: True" in text

    match = re.search(
        r"entity rows: (\d+), training rows: (\d+), columns: (\d+), "
        r"same rows in the same order: (\w+)",
        text,
    )
    assert match is not None, "the row-count line is missing"
    entity_rows, training_rows, columns, same_order = match.groups()
    assert int(training_rows) == int(entity_rows) == XS_ENTITY_ROWS
    assert int(columns) == 9  # 3 entity columns + the 6 features of driver_activity
    assert same_order == "True"

    assert "every null explained: True, every explained row is null: True" in text
    assert re.search(
        r"TTL edge rows matching expectation: (\d+) of \1; values equal the last row's: True", text
    )

    # The data ends with the hour it was generated in, so the driver with a row in that hour is
    # served, unless the notebook ran across the end of the TTL (then its age says so).
    served = re.search(
        r"statuses of conv_rate: \['(\w+)', 'NOT_FOUND'\]\n"
        r"age of driver \d+'s latest value: (?:0 days )?(\d+):(\d\d):",
        text,
    )
    assert served is not None, "the online lookup lines are missing"
    status, hours, minutes = served.groups()
    within_ttl = int(hours) * 60 + int(minutes) < 120
    assert status == ("PRESENT" if within_ttl else "OUTSIDE_MAX_AGE")

    # The notebook works in a temporary copy it removes: the checkout and the cwd stay as they were.
    assert _snapshot(ROOT / "repo") == repo_before
    assert list(tmp_path.iterdir()) == []


def _snapshot(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` with its modification time."""
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
    }
