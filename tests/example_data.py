"""The example repository's data generator (``repo/generate_data.py``), loaded as a module for
the tests that generate its data."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1] / "repo"


def load_generator() -> ModuleType:
    """``repo/generate_data.py`` as a module (loaded once per process)."""
    name = "featurestore_example_generate_data"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "generate_data.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
