"""Loading a feature repository: import its Python files and collect the definitions in them.

Every ``*.py`` file under the repository is imported except hidden folders, ``data/``, virtual
environments, and paths matching a glob line of ``.featurestoreignore``. An import error names
the file and line. Objects found in several files (one imports another) count once; two
different objects with the same kind and name are an error naming both files.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import sys
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from featurestore.definitions.base import Definition, canonical_json
from featurestore.definitions.entity import Entity
from featurestore.definitions.feature_service import FeatureService
from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import RepoLoadError

IGNORE_FILE = ".featurestoreignore"
_ALWAYS_SKIPPED = {"data", "__pycache__", "node_modules", "venv", "env"}


@dataclass
class RepoContents:
    """The definitions a repository declares, in a stable order (entities, views, services)."""

    objects: list[Definition] = field(default_factory=list)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def entities(self) -> list[Entity]:
        return [o for o in self.objects if isinstance(o, Entity)]

    @property
    def feature_views(self) -> list[FeatureView]:
        return [o for o in self.objects if isinstance(o, FeatureView)]

    @property
    def feature_services(self) -> list[FeatureService]:
        return [o for o in self.objects if isinstance(o, FeatureService)]


def repo_python_files(repo_path: Path) -> list[Path]:
    """The Python files that make up the repository's definitions, sorted."""
    patterns = _ignore_patterns(repo_path)
    files = []
    for path in sorted(repo_path.rglob("*.py")):
        rel = path.relative_to(repo_path)
        parts = rel.parts
        hidden = any(p.startswith(".") for p in parts)
        if hidden or any(p in _ALWAYS_SKIPPED for p in parts[:-1]):
            continue
        rel_text = rel.as_posix()
        if any(
            fnmatch.fnmatch(rel_text, pat) or fnmatch.fnmatch(path.name, pat) for pat in patterns
        ):
            continue
        if any(rel_text.startswith(pat.rstrip("/") + "/") for pat in patterns if pat.endswith("/")):
            continue
        files.append(path)
    return files


def _ignore_patterns(repo_path: Path) -> list[str]:
    ignore = repo_path / IGNORE_FILE
    if not ignore.is_file():
        return []
    lines = (line.strip() for line in ignore.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def load_repo(repo_path: str | Path) -> RepoContents:
    """Import the repository's files and return the definitions they declare."""
    root = Path(repo_path).resolve()
    contents = RepoContents()
    package = f"_featurestore_repo_{uuid.uuid4().hex[:8]}"
    modules_before = set(sys.modules)
    sys.path.insert(0, str(root))
    try:
        for path in repo_python_files(root):
            module = _import_file(path, root, package)
            _collect(module, path.relative_to(root).as_posix(), contents)
    finally:
        sys.path.remove(str(root))
        # Forget the repo's modules so the next load sees edited files, not cached ones.
        for name in set(sys.modules) - modules_before:
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if name.startswith(package) or module_file.startswith(str(root)):
                del sys.modules[name]
    order = {
        "entity": 0,
        "feature_view": 1,
        "on_demand_feature_view": 2,
        "feature_service": 3,
        "policy": 4,
    }
    contents.objects.sort(key=lambda o: (order[o.kind], o.name))
    return contents


def _import_file(path: Path, root: Path, package: str) -> ModuleType:
    rel = path.relative_to(root)
    name = ".".join([package, *rel.with_suffix("").parts]).replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RepoLoadError(f"{rel}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise RepoLoadError(f"{rel}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        raise RepoLoadError(f"{_location(exc, root, rel)}: {type(exc).__name__}: {exc}") from exc
    return module


def _location(exc: BaseException, root: Path, rel: Path) -> str:
    """``file:line`` of the innermost frame inside the repository."""
    where = str(rel)
    for frame in traceback.extract_tb(exc.__traceback__):
        frame_path = Path(frame.filename)
        if frame_path.is_relative_to(root):
            where = f"{frame_path.relative_to(root)}:{frame.lineno}"
    return where


def _collect(module: ModuleType, origin: str, contents: RepoContents) -> None:
    for value in vars(module).values():
        if not isinstance(value, Definition):
            continue
        key = (value.kind, value.name)
        if key in contents.origins:
            existing = next(o for o in contents.objects if (o.kind, o.name) == key)
            if canonical_json(existing.to_dict()) != canonical_json(value.to_dict()):
                raise RepoLoadError(
                    f"{value.label} is defined differently in {contents.origins[key]} and {origin}; "
                    "rename one of them"
                )
            continue
        contents.origins[key] = origin
        contents.objects.append(value)
