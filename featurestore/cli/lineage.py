"""``featurestore lineage NAME``: what NAME is built from and what is built from it."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import cast

import click

from featurestore.cli.app import CliContext
from featurestore.governance.lineage import (
    NODE_KINDS,
    Direction,
    LineageEdge,
    LineageNode,
    LineageResult,
)


def register(cli: click.Group) -> None:
    """Attach ``lineage`` to ``cli``."""
    cli.add_command(lineage)


@click.command()
@click.argument("name")
@click.option(
    "--upstream", "direction", flag_value="upstream", help="Only what NAME is built from."
)
@click.option(
    "--downstream",
    "direction",
    flag_value="downstream",
    help="Only what is built from NAME (what breaks if it changes).",
)
@click.option(
    "--kind",
    type=click.Choice(NODE_KINDS),
    default=None,
    help="Which kind of node, when NAME names several.",
)
@click.option(
    "--runs",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Latest materialization runs, validations and drift checks shown per view version (0: all).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "dot"]),
    default="text",
    show_default=True,
    help="text: a tree per root; json: nodes and edges; dot: a Graphviz graph.",
)
@click.pass_obj
def lineage(
    state: CliContext, name: str, direction: str | None, kind: str | None, runs: int, fmt: str
) -> None:
    """Show the lineage of NAME: a source path (as its definition gives it, e.g.
    data/driver_stats.parquet), a push source, an entity, a feature view (every version), a
    feature service, a saved dataset or a materialization run id.

    By default both directions; --downstream answers "what breaks if I change this", --upstream
    "which views and versions built this training set".
    """
    way = cast(Direction, direction or "both")
    result = state.store.trace_lineage(name, way, kind=kind, runs=runs or None)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    elif fmt == "dot":
        click.echo(render_dot(result))
    else:
        click.echo(render_text(result))


def render_text(result: LineageResult) -> str:
    """A tree per root and direction; a node met again is shown once more, marked ``(above)``."""
    lines: list[str] = []
    kinds = {n.kind for n in result.roots}
    if len(result.roots) > 1 and len(kinds) > 1:
        named = ", ".join(n.label for n in result.roots)
        lines.append(
            f"{result.name!r} names {len(result.roots)} nodes ({named}); pick one "
            "with --kind, all are shown:"
        )
    ways = ("upstream", "downstream") if result.direction == "both" else (result.direction,)
    for way in ways:
        children = _children(result.edges, way)
        for root in result.roots:
            if lines:
                lines.append("")
            arrow = "<-" if way == "upstream" else "->"
            lines.append(f"{root.label}  ({way})")
            seen: set[LineageNode] = {root}
            _tree(root, children, arrow, "", seen, lines)
            if not children.get(root):
                lines.append(f"  (nothing {way})")
    if result.omitted_runs:
        lines.append("")
        lines.append(
            f"({result.omitted_runs} earlier materialization run(s) not shown; --runs 0 shows all)"
        )
    return "\n".join(lines)


def _children(
    edges: list[LineageEdge], way: str
) -> dict[LineageNode, list[tuple[LineageEdge, LineageNode]]]:
    found: dict[LineageNode, list[tuple[LineageEdge, LineageNode]]] = defaultdict(list)
    for edge in edges:
        if way == "downstream":
            found[edge.source].append((edge, edge.target))
        else:
            found[edge.target].append((edge, edge.source))
    return found


def _tree(
    node: LineageNode,
    children: dict[LineageNode, list[tuple[LineageEdge, LineageNode]]],
    arrow: str,
    indent: str,
    seen: set[LineageNode],
    lines: list[str],
) -> None:
    below = sorted(children.get(node, []), key=lambda pair: (pair[1], pair[0].at or 0))
    unique: dict[tuple[LineageNode, str], LineageEdge] = {}
    for edge, other in below:
        unique.setdefault((other, edge.relation), edge)
    items = list(unique.items())
    for position, ((other, relation), edge) in enumerate(items):
        last = position == len(items) - 1
        branch = "└── " if last else "├── "
        again = other in seen
        lines.append(
            f"{indent}{branch}{arrow} {relation} {arrow} {other.label}{_note(edge)}"
            f"{'  (above)' if again else ''}"
        )
        if not again:
            seen.add(other)
            _tree(other, children, arrow, indent + ("    " if last else "│   "), seen, lines)


def _note(edge: LineageEdge) -> str:
    detail = edge.detail
    if edge.relation in ("materialized_by", "writes") and "window_end" in detail:
        start = detail.get("window_start") or "beginning"
        return f"  [{start} .. {detail['window_end']}, {detail.get('written', 0)} written]"
    if edge.relation == "pushed":
        return f"  [{detail.get('rows', 0)} row(s)]"
    return ""


def render_dot(result: LineageResult) -> str:
    """The nodes and edges as a Graphviz digraph (roots drawn bold)."""
    shapes = {
        "source": "note",
        "push_source": "note",
        "store_data": "folder",
        "saved_dataset": "cylinder",
        "online_store": "cylinder",
        "materialization": "ellipse",
    }
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for node in result.nodes:
        style = ", style=bold" if node in result.roots else ""
        label = node.label.replace('"', '\\"')
        shape = shapes.get(node.kind, "box")
        lines.append(f'  "{_dot_id(node)}" [label="{label}", shape={shape}{style}];')
    drawn: set[tuple[str, str, str]] = set()
    for edge in result.edges:
        key = (_dot_id(edge.source), _dot_id(edge.target), edge.relation)
        if key not in drawn:
            drawn.add(key)
            lines.append(f'  "{key[0]}" -> "{key[1]}" [label="{edge.relation}"];')
    lines.append("}")
    return "\n".join(lines)


def _dot_id(node: LineageNode) -> str:
    return node.id.replace('"', '\\"')
