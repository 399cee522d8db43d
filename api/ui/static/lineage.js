/* featurestore UI: the lineage page and its graph (registry objects as nodes in columns by
 * kind). Loaded before app.js, whose helpers (el, svg, api, table, failure, pageOf) it calls. */
"use strict";

async function loadGraph(target, name) {
  try {
    const data = await api("lineage?" + query({ focus: name, kind: "on_demand_feature_view" }));
    const detail = el("div", { id: "node-detail" }, el("p", { class: "muted" }, "Click a node to see what it is built from and into."));
    target.replaceChildren(graph(data, detail), detail);
  } catch (error) { target.replaceChildren(failure(error)); }
}

/* -- lineage -------------------------------------------------------------------------------- */

// The graph's columns, left to right: what each kind of node is built from sits to its left.
const COLUMNS = [["source", "request_source"], ["entity"], ["feature_view"], ["on_demand_feature_view"], ["feature_service"], ["saved_dataset"]];
const PAGES = new Set(["feature_view", "on_demand_feature_view"]); // nodes with a page of their own

async function lineagePage(_, params) {
  const focus = params.get("focus") || "";
  const data = await api("lineage?" + query({ focus, kind: params.get("kind") || "" }));
  const detail = el("div", { id: "node-detail" }, el("p", { class: "muted" }, "Click a node to see what it is built from and into."));
  const input = el("input", { id: "focus", placeholder: "Only around this view", value: focus });
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") location.hash = "#/lineage?" + query({ focus: input.value }); });
  return el("div", {},
    el("h1", {}, "Lineage"),
    el("div", { class: "toolbar" }, input, data.truncated ? el("span", { class: "bad" }, "graph truncated") : null,
      el("span", { class: "muted" }, "sources and request sources → entities → feature views → on-demand views → feature services → saved datasets")),
    graph(data, detail), detail);
}

function graph(data, detail) {
  const columns = COLUMNS.map((kinds) => data.nodes.filter((n) => kinds.includes(n.kind)));
  const boxW = 190, boxH = 26, gapX = 60, gapY = 14;
  const place = {};
  columns.forEach((nodes, c) => nodes.forEach((node, r) => { place[node.id] = { x: 10 + c * (boxW + gapX), y: 10 + r * (boxH + gapY) }; }));
  const height = 20 + Math.max(1, ...columns.map((n) => n.length)) * (boxH + gapY);
  const width = 20 + COLUMNS.length * (boxW + gapX);
  const edgeNodes = data.edges.filter((e) => place[e.source] && place[e.target]).map((e) => {
    const a = place[e.source], b = place[e.target];
    const [x1, y1, x2, y2] = a.x <= b.x ? [a.x + boxW, a.y + boxH / 2, b.x, b.y + boxH / 2] : [a.x, a.y + boxH / 2, b.x + boxW, b.y + boxH / 2];
    const mid = (x1 + x2) / 2;
    return svg("path", { class: "edge", "data-source": e.source, "data-target": e.target, d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}` }, svg("title", {}, e.relation));
  });
  const nodes = data.nodes.filter((n) => place[n.id]).map((node) => {
    const p = place[node.id];
    const label = node.name + (node.version ? "@" + node.version : "");
    return svg("g", { class: `node kind-${node.kind}`, "data-id": node.id, transform: `translate(${p.x},${p.y})`, onclick: () => selectNode(node, data, detail) },
      svg("rect", { width: boxW, height: boxH }), svg("text", { x: 8, y: 17 }, label.length > 28 ? label.slice(0, 27) + "…" : label), svg("title", {}, node.id));
  });
  return svg("svg", { id: "graph", width, height, viewBox: `0 0 ${width} ${height}` }, edgeNodes, nodes);
}

function selectNode(node, data, detail) {
  for (const g of document.querySelectorAll("#graph .node")) g.classList.toggle("selected", g.dataset.id === node.id);
  for (const p of document.querySelectorAll("#graph .edge")) p.classList.toggle("lit", p.dataset.source === node.id || p.dataset.target === node.id);
  const byId = Object.fromEntries(data.nodes.map((n) => [n.id, n]));
  const up = data.edges.filter((e) => e.target === node.id).map((e) => [e.relation, byId[e.source]]);
  const down = data.edges.filter((e) => e.source === node.id).map((e) => [e.relation, byId[e.target]]);
  const link = (n) => n && PAGES.has(n.kind) ? el("a", { href: pageOf(n.kind, n.name) }, n.id) : (n ? n.id : "?");
  detail.replaceChildren(
    el("h2", {}, node.kind.replaceAll("_", " "), ": ", node.name, node.version ? " v" + node.version : ""),
    PAGES.has(node.kind) ? el("p", {}, el("a", { id: "open-view", href: pageOf(node.kind, node.name) }, "Open its page")) : null,
    table(["built from", "built into"], [[up.map(([r, n]) => el("div", {}, r, ": ", link(n))), down.map(([r, n]) => el("div", {}, r, ": ", link(n)))]], { id: "node-edges" }));
}
