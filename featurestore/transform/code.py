"""An on-demand function as stored code: normalized source, the names it needs, and back.

:func:`capture` turns a Python function into a :class:`FunctionCode`: its source with the
decorators and the docstring removed, re-printed from the AST (so whitespace and comments do not
change it), plus the global names the body reads. Those are recorded by *what they are*, never by
pickling objects:

* a module (``import pandas as pd``) -> ``{"name": "pd", "module": "pandas"}``;
* a function or class imported from another module (``from math import sqrt``) ->
  ``{"name": "sqrt", "module": "math", "attr": "sqrt"}``;
* a constant (``int``, ``float``, ``str``, ``bool`` or ``None``) -> stored by value;
* builtins need nothing.

Anything else (a helper function or an object of the feature repository itself) is a
:class:`DefinitionError` at definition time: the registry could not run it without the repository.
:meth:`FunctionCode.load` executes the stored source in a fresh namespace holding exactly those
names, so a pinned version runs its own code with no repository checked out.
"""

from __future__ import annotations
import __future__

import ast
import builtins
import dis
import importlib
import inspect
import textwrap
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from featurestore.errors import DefinitionError

_CONSTANT_TYPES = (int, float, str, bool, type(None))


@dataclass(frozen=True)
class FunctionCode:
    """A function's normalized source and the global names it needs (see the module doc)."""

    name: str
    source: str
    imports: tuple[tuple[str, str, str | None], ...] = ()  # (name, module, attribute or None)
    constants: Mapping[str, Any] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        return {
            "function": self.name,
            "source": self.source,
            "imports": [
                {"name": n, "module": m, **({} if a is None else {"attr": a})}
                for n, m, a in self.imports
            ],
            "constants": dict(sorted(self.constants.items())),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> FunctionCode:
        return cls(
            name=spec["function"],
            source=spec["source"],
            imports=tuple((i["name"], i["module"], i.get("attr")) for i in spec["imports"]),
            constants=dict(spec["constants"]),
        )

    def load(self, label: str) -> Callable[..., Any]:
        """The function, executed from the stored source in a namespace of its own."""
        namespace: dict[str, Any] = {"__builtins__": builtins, "__name__": f"featurestore.{label}"}
        for name, module, attr in self.imports:
            try:
                value: Any = importlib.import_module(module)
                for part in (attr or "").split(".") if attr else ():
                    value = getattr(value, part)
            except (ImportError, AttributeError) as exc:
                raise DefinitionError(
                    f"{label}: its code needs {module}{'.' + attr if attr else ''} (as {name!r}), "
                    f"which cannot be imported here: {exc}"
                ) from None
            namespace[name] = value
        namespace.update(self.constants)
        try:
            # Annotations stay text: they may name types the namespace does not hold.
            flags = __future__.annotations.compiler_flag
            exec(compile(self.source, f"<{label}>", "exec", flags), namespace)
        except Exception as exc:  # any failure is the stored code's
            raise DefinitionError(f"{label}: its stored code cannot be loaded: {exc}") from None
        function = namespace.get(self.name)
        if not callable(function):
            raise DefinitionError(f"{label}: its stored code defines no function {self.name!r}")
        return function  # type: ignore[no-any-return]


def capture(function: Callable[..., Any], label: str) -> FunctionCode:
    """The stored form of ``function``; DefinitionError when it cannot be stored."""
    if not isinstance(function, types.FunctionType):
        raise DefinitionError(f"{label}: expected a function defined with def, got {function!r}")
    try:
        text = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(text)
    except (OSError, TypeError, SyntaxError) as exc:
        raise DefinitionError(
            f"{label}: the source of {function.__name__!r} cannot be read ({exc}); define it with "
            "def in a file of the feature repository"
        ) from None
    if function.__code__.co_freevars:
        raise DefinitionError(
            f"{label}: {function.__name__!r} uses variables of an enclosing function "
            f"({', '.join(function.__code__.co_freevars)}), which cannot be stored with its code; "
            "define it at module level"
        )
    source = normalize(tree, function.__name__, label)
    imports: list[tuple[str, str, str | None]] = []
    constants: dict[str, Any] = {}
    for name in sorted(set(_global_names(function.__code__))):
        if name in function.__globals__:
            value = function.__globals__[name]
        elif hasattr(builtins, name):
            continue
        else:
            raise DefinitionError(f"{label}: its code uses {name!r}, which is not defined")
        if isinstance(value, types.ModuleType):
            imports.append((name, value.__name__, None))
        elif isinstance(value, _CONSTANT_TYPES):
            constants[name] = value
        elif _importable(value, function.__module__):
            imports.append((name, value.__module__, value.__qualname__))
        else:
            raise DefinitionError(
                f"{label}: its code uses the global {name!r} ({type(value).__name__}), which "
                "cannot be stored with the code: use modules (import numpy as np), names imported "
                "from installed packages (from math import sqrt) or constants (numbers, strings), "
                "or define it inside the function"
            )
    return FunctionCode(function.__name__, source, tuple(imports), constants)


def normalize(tree: ast.Module, name: str, label: str) -> str:
    """The function's definition without decorators or docstring, printed from its AST."""
    defs = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
    ]
    if len(defs) != 1 or isinstance(defs[0], ast.AsyncFunctionDef):
        raise DefinitionError(f"{label}: the source of {name!r} is not one plain def")
    node = defs[0]
    node.decorator_list = []
    body = node.body
    if (
        len(body) > 1
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        node.body = body[1:]
    return ast.unparse(ast.Module(body=[node], type_ignores=[]))


def _global_names(code: types.CodeType) -> Iterator[str]:
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            yield str(instruction.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


def _importable(value: Any, own_module: str) -> bool:
    """A function or class that can be imported again by module and qualified name."""
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return False
    if module in (own_module, "__main__"):
        return False
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return False
    return found is value
