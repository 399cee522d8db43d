"""The lineage graph, kept in the registry: what feeds what, per definition version.

    graph = LineageGraph(registry, "demo")
    graph.trace("data/driver_stats.parquet", "downstream")   # what breaks if this source changes
    graph.trace("training_2026_03", "upstream")               # which views and versions built it

Nodes are ``(kind, name, version)``; ``version`` is set for feature views and services only:

==================  =========================================================================
``source``          a Parquet source, by the path its definition gives (``data/stats.parquet``)
``push_source``     a push source, by name
``store_data``      rows pushed to the offline store, by folder (``push/<push source>`` under
                    ``<data_path>/<project>/``)
``entity``          an entity
``feature_view``    one version of a feature view
``feature_service`` one version of a feature service
``saved_dataset``   a training set saved with ``job.save_dataset(name)``
``materialization`` one materialization run of one view version, by run id
``online_store``    the project's online store
``validation``      one validation of a view's rows, by ``<view>#<result id>``
``drift_check``     one drift comparison of a view, by ``<view>#<report id>``
==================  =========================================================================

Edges, by relation: ``feeds`` (source, push source or store data -> view; source -> push source),
``keys`` (entity -> view), ``part_of`` (view -> service), ``materialized_by`` (view -> run),
``writes`` (run -> online store), ``pushed`` (push source -> store data, one per push),
``used_by`` (view or service -> saved dataset), ``validated_by`` (view -> validation),
``drift_checked_by`` (view -> drift check) and ``reference_of`` (saved dataset -> drift check). The edges that follow from definitions are
recorded at every apply, once each; the others are events, recorded each time they happen. Edges
are never deleted: the graph keeps the history of what was built from what.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from sqlalchemy import Connection, and_, insert, or_, select

from featurestore.errors import ObjectNotFoundError
from featurestore.registry.base import Registry
from featurestore.registry.schema import lineage_edges

#: The kinds of node, in the order they are listed when one name names several.
NODE_KINDS = (
    "source",
    "request_source",
    "push_source",
    "store_data",
    "entity",
    "feature_view",
    "on_demand_feature_view",
    "feature_service",
    "saved_dataset",
    "materialization",
    "online_store",
    "validation",
    "drift_check",
)
#: Relations whose targets are runs: ``trace(runs=N)`` keeps the latest N per view version.
RUN_RELATIONS = ("materialized_by", "validated_by", "drift_checked_by")
#: The online store's node name (one online store per project).
ONLINE_STORE = "online_store"

Direction = Literal["upstream", "downstream", "both"]
DIRECTIONS: tuple[Direction, ...] = ("upstream", "downstream", "both")

# Frontier nodes asked about per query: bounds the size of one SQL statement.
_CHUNK = 200


@dataclass(frozen=True, order=True)
class LineageNode:
    """One node of the graph; ``version`` only for feature views and services."""

    kind: str
    name: str
    version: int | None = None

    @property
    def id(self) -> str:
        """A stable identifier, e.g. ``feature_view:driver_stats@2``."""
        pin = "" if self.version is None else f"@{self.version}"
        return f"{self.kind}:{self.name}{pin}"

    @property
    def label(self) -> str:
        """How output names it, e.g. ``feature view driver_stats v2``."""
        pin = "" if self.version is None else f" v{self.version}"
        return f"{self.kind.replace('_', ' ')} {self.name}{pin}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "version": self.version}


@dataclass(frozen=True)
class LineageEdge:
    """``source`` feeds ``target``; ``at`` is set once recorded."""

    source: LineageNode
    target: LineageNode
    relation: str
    run_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None

    @property
    def key(self) -> tuple[LineageNode, LineageNode, str]:
        """What makes a definition edge the same edge at the next apply."""
        return (self.source, self.target, self.relation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.id,
            "target": self.target.id,
            "relation": self.relation,
            "run_id": self.run_id,
            "at": None if self.at is None else self.at.isoformat(),
            "detail": dict(self.detail),
        }


@dataclass
class LineageResult:
    """What :meth:`LineageGraph.trace` found from the nodes called ``name``."""

    name: str
    direction: Direction
    roots: list[LineageNode]
    nodes: list[LineageNode] = field(default_factory=list)
    edges: list[LineageEdge] = field(default_factory=list)
    #: Runs left out (materializations, validations, drift checks older than the ``runs``
    #: latest of their kind for their view version).
    omitted_runs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "direction": self.direction,
            "omitted_runs": self.omitted_runs,
            "roots": [n.id for n in self.roots],
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }


class LineageGraph:
    """Records and traverses one project's lineage graph (table ``lineage_edges``)."""

    def __init__(self, registry: Registry, project: str) -> None:
        self.registry = registry
        self.project = project

    # -- recording -----------------------------------------------------------------------------

    def record(self, edges: Sequence[LineageEdge], conn: Connection | None = None) -> None:
        """Append event edges (a push, a run, a saved dataset), in ``conn``'s transaction when
        given, else in one of their own."""
        if not edges:
            return
        if conn is not None:
            self._insert(conn, edges)
            return
        with self.registry.writing() as own:
            self._insert(own, edges)

    def ensure(self, edges: Iterable[LineageEdge]) -> int:
        """Record the definition edges not recorded yet; returns how many were new."""
        wanted = {e.key: e for e in edges}
        if not wanted:
            return 0
        with self.registry.writing() as conn:
            sources = {k[0] for k in wanted}
            relations = {k[2] for k in wanted}
            known = {e.key for e in self._edges_from(conn, sources, "downstream", relations)}
            new = [e for key, e in wanted.items() if key not in known]
            self._insert(conn, new)
        return len(new)

    def _insert(self, conn: Connection, edges: Sequence[LineageEdge]) -> None:
        if not edges:
            return
        now = datetime.now(timezone.utc)
        conn.execute(
            insert(lineage_edges),
            [
                {
                    "project": self.project,
                    "at": now,
                    "source_kind": e.source.kind,
                    "source_name": e.source.name,
                    "source_version": e.source.version,
                    "target_kind": e.target.kind,
                    "target_name": e.target.name,
                    "target_version": e.target.version,
                    "relation": e.relation,
                    "run_id": e.run_id,
                    "detail_json": json.dumps(dict(e.detail), sort_keys=True, default=str),
                }
                for e in edges
            ],
        )

    # -- reading -------------------------------------------------------------------------------

    def nodes_named(self, name: str, kind: str | None = None) -> list[LineageNode]:
        """Every node called ``name`` (of ``kind`` when given), every version, in kind order."""
        e = lineage_edges
        found: set[LineageNode] = set()
        with self.registry.reading() as conn:
            for side in ("source", "target"):
                kind_c, name_c, version_c = (getattr(e.c, f"{side}_{c}") for c in _NODE_COLUMNS)
                query = select(kind_c, name_c, version_c).distinct()
                query = query.where(e.c.project == self.project, name_c == name)
                if kind is not None:
                    query = query.where(kind_c == kind)
                found.update(LineageNode(r[0], r[1], r[2]) for r in conn.execute(query))
        return sorted(found, key=_node_order)

    def trace(
        self,
        name: str,
        direction: Direction = "both",
        *,
        kind: str | None = None,
        runs: int | None = None,
    ) -> LineageResult:
        """The nodes upstream and/or downstream of every node called ``name``.

        A name can name several nodes (a view at each of its versions; an entity and a view of the
        same name): all are roots, unless ``kind`` picks one kind. ``runs`` keeps the latest
        materialization runs, validations and drift checks of each view version only (they add
        up: one per run); the result says how many it left out. Raises ObjectNotFoundError when no node has that name.
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
        if kind is not None and kind not in NODE_KINDS:
            raise ObjectNotFoundError(f"unknown lineage node kind {kind!r}; known: {NODE_KINDS}")
        roots = self.nodes_named(name, kind)
        if not roots and os.path.normpath(name) != name:
            roots = self.nodes_named(os.path.normpath(name), kind)  # ./data/x.parquet
        if not roots:
            of_kind = "" if kind is None else f" of kind {kind}"
            raise ObjectNotFoundError(
                f"no lineage node{of_kind} named {name!r} in project {self.project!r}: sources "
                "are named by the path their definition gives (e.g. data/stats.parquet), "
                "everything else by its name; lineage is recorded from the next apply, "
                "materialization, push or saved dataset on"
            )
        result = LineageResult(name=name, direction=direction, roots=roots)
        edges: dict[tuple[Any, ...], LineageEdge] = {}
        with self.registry.reading() as conn:
            for way in ("upstream", "downstream"):
                if direction in (way, "both"):
                    for edge in self._walk(conn, roots, way):
                        edges[(*edge.key, edge.run_id, edge.at)] = edge
        ordered = sorted(edges.values(), key=lambda e: (e.at or _EPOCH, e.source, e.target))
        if runs is not None:
            ordered, result.omitted_runs = _latest_runs(ordered, runs, set(roots))
        result.edges = ordered
        nodes = set(roots) | {n for e in ordered for n in (e.source, e.target)}
        result.nodes = sorted(nodes, key=_node_order)
        return result

    def _walk(
        self, conn: Connection, roots: Sequence[LineageNode], way: Direction
    ) -> list[LineageEdge]:
        """Breadth-first from ``roots``; each node is expanded once."""
        found: list[LineageEdge] = []
        # A node and the node it was reached from (None for a root).
        frontier: list[tuple[LineageNode, LineageNode | None]] = [(r, None) for r in roots]
        # A service is expanded once per node it was reached from (see _follows), others once.
        expanded: set[tuple[LineageNode, LineageNode | None]] = set()
        seen: set[tuple[Any, ...]] = set()
        while frontier:
            frontier = [step for step in frontier if _expansion(*step) not in expanded]
            expanded.update(_expansion(*step) for step in frontier)
            if not frontier:
                break
            edges = self._edges_from(conn, {n for n, _ in frontier}, way)
            following: list[tuple[LineageNode, LineageNode | None]] = []
            for here, via in frontier:
                for edge in edges:
                    if (edge.source if way == "downstream" else edge.target) != here:
                        continue
                    if not _follows(edge, here, via, way):
                        continue
                    identity = (*edge.key, edge.run_id, edge.at)
                    if identity not in seen:
                        seen.add(identity)
                        found.append(edge)
                    following.append((edge.target if way == "downstream" else edge.source, here))
            frontier = following
        return found

    def _edges_from(
        self,
        conn: Connection,
        nodes: set[LineageNode],
        way: Direction,
        relations: set[str] | None = None,
    ) -> list[LineageEdge]:
        """Edges leaving ``nodes`` (downstream) or arriving at them (upstream), of ``relations``
        only when given."""
        e = lineage_edges
        side = "source" if way == "downstream" else "target"
        kind_c, name_c = getattr(e.c, f"{side}_kind"), getattr(e.c, f"{side}_name")
        ordered = sorted(nodes)
        result: list[LineageEdge] = []
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            match = or_(*(and_(kind_c == n.kind, name_c == n.name) for n in chunk))
            query = select(e).where(e.c.project == self.project, match)
            if relations is not None:
                query = query.where(e.c.relation.in_(sorted(relations)))
            rows = conn.execute(query.order_by(e.c.id)).all()
            wanted = set(chunk)
            for row in rows:
                edge = _edge(row)
                if (edge.source if way == "downstream" else edge.target) in wanted:
                    result.append(edge)
        return result


_NODE_COLUMNS = ("kind", "name", "version")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _follows(edge: LineageEdge, here: LineageNode, via: LineageNode | None, way: Direction) -> bool:
    """Whether a walk that reached ``here`` from ``via`` goes on along ``edge``.

    A saved dataset names the exact view versions it used, and so does its edge from the feature
    service it was asked through. A service follows its views' newer versions, so going through
    the service would mix versions up: upstream, a service reached from a dataset is not expanded
    (the dataset's views are its direct parents); downstream, a service reached from a view
    version leads only to the datasets built with that version.
    """
    if here.kind != "feature_service" or via is None:
        return True
    if way == "upstream":
        return via.kind != "saved_dataset"
    if edge.relation != "used_by" or via.kind != "feature_view":
        return True
    return bool(edge.detail.get("views", {}).get(via.name) == via.version)


def _latest_runs(
    edges: list[LineageEdge], keep: int, roots: set[LineageNode]
) -> tuple[list[LineageEdge], int]:
    """``edges`` without the runs older than the ``keep`` latest of their relation per view
    version (a run asked for by name stays); ``edges`` are in time order."""
    per_view: dict[tuple[LineageNode, str], list[LineageNode]] = {}
    for edge in edges:
        if edge.relation in RUN_RELATIONS:
            per_view.setdefault((edge.source, edge.relation), []).append(edge.target)
    dropped = {
        run
        for found in per_view.values()
        for run in (found[:-keep] if keep > 0 else found)
        if run not in roots
    }
    kept = [e for e in edges if e.source not in dropped and e.target not in dropped]
    return kept, len(dropped)


def _expansion(
    node: LineageNode, via: LineageNode | None
) -> tuple[LineageNode, LineageNode | None]:
    return (node, via if node.kind == "feature_service" else None)


def _node_order(node: LineageNode) -> tuple[int, str, int]:
    return (
        NODE_KINDS.index(node.kind) if node.kind in NODE_KINDS else len(NODE_KINDS),
        node.name,
        node.version or 0,
    )


def _edge(row: Any) -> LineageEdge:
    return LineageEdge(
        source=LineageNode(row.source_kind, row.source_name, row.source_version),
        target=LineageNode(row.target_kind, row.target_name, row.target_version),
        relation=row.relation,
        run_id=row.run_id,
        detail=json.loads(row.detail_json),
        at=row.at,
    )


__all__ = [
    "DIRECTIONS",
    "NODE_KINDS",
    "ONLINE_STORE",
    "RUN_RELATIONS",
    "Direction",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "LineageResult",
]
