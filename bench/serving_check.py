"""``serving.py``'s requests and its value check: the request bodies (the draw of
``online.py``), and the first requests of the set sent to every server and compared, before any
timing (servers that disagree or answer no values are not timed).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine_runs import (
    LABELS,
)
from http_load import (
    ServerProcess,
    json_client,
)
from online import key_batches

PATH = "/get-online-features"


# -- requests and the value check ----------------------------------------------------------------


def request_bodies(
    refs: Sequence[str], count: int, drivers: int, customers: int, seed: int
) -> list[bytes]:
    """``count`` single-entity lookup bodies in Feast's shape, keys drawn with ``seed``
    (the same draw as ``online.py``'s one-entity lookups)."""
    bodies = []
    for (row,) in key_batches(1, count, drivers, customers, seed):
        entities = {"driver_id": [row["driver_id"]], "customer_id": [row["customer_id"]]}
        body = {"features": list(refs), "entities": entities}
        bodies.append(json.dumps(body, separators=(",", ":")).encode())
    return bodies


def _columns(answer: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """Feature name -> (value, status) of a one-entity response in Feast's shape."""
    names = answer["metadata"]["feature_names"]
    return {
        name: (result["values"][0], result["statuses"][0])
        for name, result in zip(names, answer["results"], strict=True)
    }


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        # Float32 features: each side may print the float32 value with a different precision.
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    return bool(a == b)


@dataclass
class ValueCheck:
    """What the first requests of the set returned on each server."""

    requests: int
    cells: int
    non_null: dict[str, int]
    statuses: dict[str, dict[str, int]]
    mismatches: int
    examples: list[str]
    failures: list[str]

    @property
    def ok(self) -> bool:
        """Every server answered, values came back, and (two servers) they agree."""
        return (
            not self.failures
            and self.mismatches == 0
            and all(count > 0 for count in self.non_null.values())
        )


def check_values(
    servers: dict[str, ServerProcess], bodies: Sequence[bytes], features: Sequence[str]
) -> ValueCheck:
    """Send ``bodies`` to every server; count non-null values, statuses and disagreements."""
    answers: dict[str, list[dict[str, tuple[Any, str]]]] = {}
    failures: list[str] = []
    for engine, server in servers.items():
        answers[engine] = []
        with json_client(server.port) as post:
            for body in bodies:
                status, answer = post(PATH, body)
                if status != 200:
                    failures.append(f"{LABELS[engine]} answered {status}: {answer}")
                    break
                answers[engine].append(_columns(answer))
    non_null = {
        engine: sum(row[f][0] is not None for row in rows for f in features)
        for engine, rows in answers.items()
    }
    statuses = {
        engine: dict(Counter(row[f][1] for row in rows for f in features))
        for engine, rows in answers.items()
    }
    mismatches, examples = 0, list[str]()
    # Every server is held to one reference: Feast's when it runs, else the first of ours.
    reference = "feast" if "feast" in answers else next(iter(answers), "")
    others = [engine for engine in answers if engine != reference]
    for engine in others if not failures else []:
        pairs = zip(answers[engine], answers[reference], strict=True)
        for i, (ours, theirs) in enumerate(pairs):
            for feature in features:
                if not _same(ours[feature][0], theirs[feature][0]):
                    mismatches += 1
                    if len(examples) < 5:
                        keys = json.loads(bodies[i])["entities"]
                        examples.append(
                            f"request {i} {keys}: {feature} {LABELS[engine]} {ours[feature]}, "
                            f"{LABELS[reference]} {theirs[feature]}"
                        )
    return ValueCheck(
        len(bodies), len(bodies) * len(features), non_null, statuses, mismatches, examples, failures
    )


def print_check(check: ValueCheck) -> None:
    """The value check, one line per engine and the agreement."""
    print(
        f"\nvalue check: the first {check.requests} requests of the set on each server, "
        f"{check.cells:,} feature values each"
    )
    for engine, count in check.non_null.items():
        print(
            f"  {LABELS[engine]:<14} non-null {count:,} ({count / max(check.cells, 1):.1%}); "
            f"statuses {check.statuses[engine]}"
        )
    if len(check.non_null) >= 2 and not check.failures:
        print(f"  values differing between the servers: {check.mismatches}")
    for line in check.examples + check.failures:
        print(f"    {line}")
