/* featurestore UI: a single page, plain JavaScript, no build step and no library.
 * Pages: #/catalog, #/view/NAME, #/on-demand/NAME, #/lineage, #/datasets, #/audit. Every call goes to /ui/api/...
 * with the token of the header's field (kept in this tab's sessionStorage) as a bearer token. */
"use strict";

const TOKEN_KEY = "featurestore.token";
const page = document.getElementById("page");

/* -- helpers ------------------------------------------------------------------------------ */

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) if (child) node.append(child instanceof Node ? child : String(child));
  return node;
}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch("/ui/api/" + path, { headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (body.error && body.error.message) || response.statusText;
    throw new Error(response.status + ": " + message);
  }
  return body;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== "" && value !== null && value !== undefined) search.set(key, value);
  return search.toString();
}

function fmt(value, digits = 4) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(digits);
  return String(value);
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "none";
  const units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
  for (const [unit, size] of units) if (seconds >= size && seconds % size === 0) return seconds / size + unit;
  return seconds + "s";
}

function tags(map) {
  return Object.entries(map || {}).map(([k, v]) => el("span", { class: "tag" }, k + "=" + v));
}

function table(headers, rows, attrs) {
  return el("table", attrs || {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))));
}

function pagedTable(headers, rows, attrs, size = 50) {
  // A table whose rows are all here, shown ``size`` at a time (a view's schema, ...).
  const box = el("div", {});
  const show = (offset) => box.replaceChildren(table(headers, rows.slice(offset, offset + size), attrs),
    rows.length > size ? pager(offset, size, rows.length, undefined, show) : "");
  show(0);
  return box;
}

function pager(offset, limit, total, more, go) {
  const hasMore = more !== undefined ? more : offset + limit < total;
  return el("div", { class: "pager" },
    el("button", { class: "prev", disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)) }, "‹ Previous"),
    el("span", { class: "muted" }, total !== undefined ? `${total ? offset + 1 : 0}–${Math.min(offset + limit, total)} of ${total}` : `from ${offset + 1}`),
    el("button", { class: "next", disabled: !hasMore, onclick: () => go(offset + limit) }, "Next ›"));
}

function failure(error) {
  return el("p", { class: "error" }, error.message || String(error));
}

/* -- router --------------------------------------------------------------------------------- */

const routes = { catalog: catalogPage, view: viewPage, "on-demand": onDemandPage, lineage: lineagePage, datasets: datasetsPage, audit: auditPage };
let firstRender = true;

async function route() {
  const hash = location.hash.replace(/^#\/?/, "") || "catalog";
  const [path, search] = hash.split("?");
  const [name, ...rest] = path.split("/");
  const render = routes[name] || catalogPage;
  for (const link of document.querySelectorAll("header nav a")) link.classList.toggle("active", link.id === "nav-" + name);
  document.body.dataset.page = name;
  document.body.dataset.ready = "0";
  try {
    const content = await render(decodeURIComponent(rest.join("/")), new URLSearchParams(search || ""));
    page.replaceChildren(content);
  } catch (error) {
    page.replaceChildren(failure(error));
  }
  document.body.dataset.ready = "1";
  if (firstRender) {
    firstRender = false;
    // Read by the tests and the bench: time from navigation start to the first page drawn.
    document.body.dataset.firstRenderMs = performance.now().toFixed(1);
  }
}

window.addEventListener("hashchange", route);

/* -- token ---------------------------------------------------------------------------------- */

async function showWho() {
  const who = document.getElementById("whoami");
  try {
    const me = await api("whoami");
    who.textContent = `${me.project} · ${me.principal}${me.roles.length ? " (" + me.roles.join(", ") + ")" : ""}`;
  } catch (error) {
    who.textContent = "not signed in";
  }
}

document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = document.getElementById("token").value.trim();
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  document.getElementById("token").value = "";
  showWho();
  route();
});
document.getElementById("token-clear").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showWho();
  route();
});

/* -- catalog -------------------------------------------------------------------------------- */

const KINDS = { "": "everything", feature: "features", feature_view: "feature views", on_demand_feature_view: "on-demand views", entity: "entities", feature_service: "feature services" };

function pageOf(kind, name) {
  // The page of a feature view or an on-demand view.
  return (kind === "on_demand_feature_view" ? "#/on-demand/" : "#/view/") + encodeURIComponent(name);
}

async function catalogPage(_, params) {
  const state = { q: params.get("q") || "", kind: params.get("kind") || "", tag: params.get("tag") || "", owner: params.get("owner") || "", offset: Number(params.get("offset") || 0) };
  const limit = 50;
  const data = await api("catalog?" + query({ ...state, limit }));
  const go = (change) => { location.hash = "#/catalog?" + query({ ...state, offset: 0, ...change }); };
  const search = el("input", { id: "search", type: "search", placeholder: "Search name, description, tag, owner", value: state.q });
  search.addEventListener("keydown", (event) => { if (event.key === "Enter") go({ q: search.value }); });
  const kind = el("select", { id: "kind", onchange: (event) => go({ kind: event.target.value }) },
    Object.entries(KINDS).map(([value, label]) => el("option", { value, selected: value === state.kind }, label)));
  const facet = (name, counts, current) => Object.entries(counts).map(([value, count]) =>
    el("a", { href: "#", class: value === current ? "on facet" : "facet", "data-facet": name, onclick: (event) => { event.preventDefault(); go({ [name]: value === current ? "" : value }); } }, `${value} (${count})`));
  const rows = data.items.map((item) => [
    el("span", { class: "kind" }, item.kind.replaceAll("_", " ")),
    item.view ? el("a", { href: pageOf(item.view_kind, item.view), class: "result" }, item.name) : el("span", { class: "result" }, item.name),
    item.description || "", item.dtype || "", item.owner || "", tags(item.tags)]);
  return el("div", {},
    el("h1", {}, "Catalog"),
    el("div", { class: "toolbar" }, search, el("button", { id: "search-go", onclick: () => go({ q: search.value }) }, "Search"), kind,
      (state.tag || state.owner) ? el("a", { href: "#", onclick: (e) => { e.preventDefault(); go({ tag: "", owner: "" }); } }, "clear filters") : null),
    el("div", { class: "layout" },
      el("aside", { class: "facets" },
        el("h3", {}, "Tags"), facet("tag", data.facets.tags, state.tag),
        el("h3", {}, "Owners"), facet("owner", data.facets.owners, state.owner)),
      el("section", {},
        table(["kind", "name", "description", "type", "owner", "tags"], rows, { id: "results" }),
        pager(state.offset, limit, data.total, undefined, (offset) => go({ ...state, offset })))));
}

/* -- one view ------------------------------------------------------------------------------- */

const KNOWN_SPEC = new Set(["entities", "join_keys", "features", "source", "ttl_seconds"]);
const KNOWN_META = new Set(["description", "tags", "owner", "online", "source", "fields"]);

async function viewPage(name) {
  const data = await api("views/" + encodeURIComponent(name));
  const view = data.view;
  const spec = view.spec, meta = view.meta;
  const fields = meta.fields || {};
  const schema = pagedTable(["feature", "type", "description", "tags"],
    spec.features.map((f) => [f.name, f.dtype, (fields[f.name] || {}).description || "", tags((fields[f.name] || {}).tags)]), { id: "schema" });
  const source = spec.source || {};
  const root = el("div", { id: "view" },
    el("h1", {}, view.name, " ", el("span", { class: "muted" }, "v" + data.current_version)),
    el("p", {}, meta.description || "", " ", tags(meta.tags)),
    el("p", { class: "muted" }, "owner: ", meta.owner || "—", " · online: ", String(meta.online)),
    el("h2", {}, "Schema"), schema,
    el("h2", {}, "Entities and source"),
    table(["entities", "join keys", "source", "timestamp", "created", "TTL", "retention"], [[
      spec.entities.map((e) => e.name).join(", "),
      spec.join_keys.map((k) => `${k.name} (${k.dtype})`).join(", "),
      [source.path || source.name || source.type || "", (meta.source && meta.source.description) ? el("div", { class: "muted" }, meta.source.description) : null],
      source.timestamp_field || "—", source.created_timestamp_column || "—",
      duration(spec.ttl_seconds), duration(data.retention_seconds)]], { id: "source" }),
    el("h2", {}, "Freshness (online watermark)"),
    data.freshness.length
      ? table(["version", "materialized up to", "created up to", "keys written", "recorded"], data.freshness.map((w) => [w.version, w.end, w.created || "—", w.rows, w.updated_at]), { id: "freshness" })
      : el("p", { class: "muted", id: "freshness" }, "Not materialized yet."),
    more(data.freshness.length, data.freshness_total, "older versions materialized"),
    genericSection(spec, meta),
    el("h2", {}, "Versions"), versionsSection("views/" + encodeURIComponent(name), data.versions, viewText),
    el("h2", {}, "Who may read it"), readersSection(name, data.readers),
    el("h2", {}, "Used by"),
    table(["feature services", "saved datasets"], [[
      data.services.map((s) => el("div", {}, s.name, " ", el("span", { class: "muted" }, (s.spec.projections.find((p) => p.view === name) || {}).features?.join(", ") || "all features"))),
      [data.datasets.map((d) => el("div", {}, `${d.name} (v${d.version}, ${d.rows} rows)`)), more(data.datasets.length, data.datasets_total, "more saved datasets")]]]),
    el("h2", {}, "Statistics"), el("div", { id: "statistics" }, el("p", { class: "muted" }, "Loading…")),
    el("h2", {}, "Drift"), el("div", { id: "drift" }, el("p", { class: "muted" }, "Loading…")),
    el("h2", {}, "Validations"), el("div", { id: "validations" }, el("p", { class: "muted" }, "Loading…")));
  loadStatistics(root.querySelector("#statistics"), name, 0).then(() => drawn("statistics"));
  loadDrift(root.querySelector("#drift"), name, 0).then(() => drawn("drift"));
  loadValidations(root.querySelector("#validations"), name, 0).then(() => drawn("validations"));
  return root;
}

function genericSection(spec, meta) {
  // Whatever else the view's description holds (aggregations, on-demand code, ...), shown as is.
  const extra = Object.entries(spec).filter(([k]) => !KNOWN_SPEC.has(k)).concat(Object.entries(meta).filter(([k]) => !KNOWN_META.has(k)));
  return el("section", { class: "generic", id: "more" },
    el("h2", {}, "Aggregations, transformations and more"),
    el("p", { class: "muted" }, "Everything else the view's description holds, rendered as it comes (aggregations and on-demand code included)."),
    extra.length ? extra.map(([key, value]) => el("div", {}, el("h3", {}, key), codeOrJson(value))) : el("p", { class: "muted" }, "Nothing else: a plain view."));
}

function codeOrJson(value) {
  if (typeof value === "string" && value.includes("\n")) return el("pre", { class: "code" }, value);
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const code = Object.entries(value).filter(([, v]) => typeof v === "string" && v.includes("\n"));
    if (code.length) return el("div", {}, code.map(([k, v]) => el("div", {}, el("span", { class: "muted" }, k), el("pre", { class: "code" }, v))),
      el("pre", {}, JSON.stringify(Object.fromEntries(Object.entries(value).filter(([k]) => !code.some(([c]) => c === k))), null, 2)));
  }
  return el("pre", {}, JSON.stringify(value, null, 2));
}

function more(shown, total, what) {
  return total > shown ? el("p", { class: "muted" }, `… and ${total - shown} ${what}`) : null;
}

function versionsSection(base, first, text, extra) {
  // The versions, newest first, a page at a time from the server; a diff (or a version's code)
  // reads the definitions it compares when asked, never all of them up front.
  const diff = el("div", { id: "diff" });
  const box = el("div", {});
  const show = (data) => {
    const rows = data.versions.map((v) => [
      "v" + v.version, v.change, v.applied_at, el("code", {}, v.content_hash.slice(0, 12)),
      v.details.map((d) => el("div", {}, d)),
      [v.definition && v.change !== "metadata" && v.version > 1
        ? el("button", { class: "diff-btn", "data-version": v.version, onclick: () => compare(base, v.version - 1, v.version, diff, text) }, `diff v${v.version - 1} → v${v.version}`)
        : "",
      v.definition && extra ? extra(v, diff) : ""]]);
    box.replaceChildren(table(["version", "change", "applied", "hash", "what changed", ""], rows, { id: "versions" }),
      pager(data.offset, data.limit, data.total, undefined, async (offset) => {
        try { show(await api(`${base}/versions?` + query({ offset, limit: data.limit }))); } catch (error) { box.replaceChildren(failure(error)); }
      }));
  };
  show(first);
  return el("div", {}, box, diff);
}

async function compare(base, older, newer, target, text) {
  target.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try {
    const [left, right] = await Promise.all([older, newer].map((v) => api(`${base}/versions/${v}`)));
    target.replaceChildren(sideBySide(left.version, text(left.definition), right.version, text(right.definition)));
  } catch (error) { target.replaceChildren(failure(error)); }
}

function viewText(definition) {
  return JSON.stringify(definition, null, 2).split("\n");
}

function sideBySide(leftVersion, a, rightVersion, b) {
  const cells = [el("div", { class: "head" }, "v" + leftVersion), el("div", { class: "head" }, "v" + rightVersion)];
  for (const [kind, l, r] of lineDiff(a, b)) {
    cells.push(el("div", { class: kind === "del" || kind === "changed" ? "del" : "" }, l === null ? "" : l));
    cells.push(el("div", { class: kind === "add" || kind === "changed" ? "add" : "" }, r === null ? "" : r));
  }
  return el("div", { class: "diff", id: "diff-table" }, cells);
}

function lineDiff(a, b) {
  // Longest common subsequence of lines; definitions are small (a few hundred lines at most).
  const n = a.length, m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push(["same", a[i], b[j]]); i++; j++; }
    else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) { out.push(["add", null, b[j]]); j++; }
    else { out.push(["del", a[i], null]); i++; }
  }
  // Pair each run of removed lines with the run of added lines next to it (either order), line
  // by line, so that a changed line reads across one row.
  const paired = [];
  for (let k = 0; k < out.length;) {
    if (out[k][0] === "same") { paired.push(out[k]); k++; continue; }
    const dels = [], adds = [];
    while (k < out.length && out[k][0] !== "same") { (out[k][0] === "del" ? dels : adds).push(out[k]); k++; }
    for (let m = 0; m < Math.max(dels.length, adds.length); m++) {
      const d = dels[m], a = adds[m];
      paired.push(d && a ? ["changed", d[1], a[2]] : d || a);
    }
  }
  return paired;
}

function readersSection(name, readers) {
  if (readers.open) return el("p", { id: "readers" }, "Everyone: the project has no access policies.");
  const box = el("div", {});
  const show = (data, offset) => box.replaceChildren(
    table(["policy", "effect", "actions", "principals", "roles", "on"],
      data.policies.map((p) => [p.policy, el("span", { class: p.effect === "deny" ? "bad" : "ok" }, p.effect), p.actions.join(", "), p.principals.join(", "), p.roles.join(", "), p.on]), { id: "readers" }),
    data.total > READERS ? el("div", { id: "readers-pager" }, pager(offset, READERS, data.total, undefined, async (o) => {
      try { show(await api(`views/${encodeURIComponent(name)}/readers?` + query({ offset: o, limit: READERS })), o); } catch (error) { box.replaceChildren(failure(error)); }
    })) : null);
  show(readers, 0);
  return box;
}

const READERS = 20; // policies a page: the view page's first page has as many

function drawn(section) {
  // Read by bench/ui.py: when each section of the View page first drew, from navigation start.
  const key = section + "Ms";
  if (!document.body.dataset[key]) document.body.dataset[key] = performance.now().toFixed(1);
}

async function loadStatistics(target, name, offset) {
  const limit = 3;
  try {
    const data = await api(`views/${encodeURIComponent(name)}/statistics?` + query({ offset, limit }));
    if (!data.statistics.length) { target.replaceChildren(el("p", { class: "muted" }, "No statistics recorded (featurestore stats).")); return; }
    target.replaceChildren(
      ...data.statistics.map((s) => el("div", { class: "stats-window" },
        el("h3", {}, `v${s.version} · ${s.window_start || "…"} .. ${s.window_end || "…"} · ${s.rows} rows`),
        el("div", { class: "cards" }, s.columns.map(statCard)))),
      pager(offset, limit, undefined, data.more, (o) => loadStatistics(target, name, o)));
  } catch (error) { target.replaceChildren(failure(error)); }
}

function statCard(c) {
  const numbers = c.kind === "numeric"
    ? `min ${fmt(c.min)} · max ${fmt(c.max)} · mean ${fmt(c.mean)} · sd ${fmt(c.stddev)}`
    : `distinct ${fmt(c.distinct)}`;
  return el("div", { class: "card stat", "data-column": c.name },
    el("div", { class: "name" }, c.name, " ", el("span", { class: "muted" }, c.dtype)),
    el("div", { class: "muted" }, `${c.rows} rows · nulls ${(100 * c.null_rate).toFixed(1)}%`),
    c.redacted ? el("div", { class: "muted" }, "values withheld") : el("div", { class: "muted" }, numbers),
    c.histogram.length ? bars(c.histogram.map((b) => ({ label: b.label !== undefined ? b.label : fmt(b.low, 3), value: b.count }))) : null);
}

function bars(items, second) {
  // A bar chart of at most a few dozen bars; ``second`` draws a second series beside the first.
  const width = 280, height = 90, max = Math.max(1e-12, ...items.map((i) => i.value), ...(second || []).map((i) => i.value));
  const slot = width / Math.max(1, items.length), bar = second ? slot / 2 - 1 : slot - 1;
  const shapes = [];
  items.forEach((item, k) => {
    const h = (item.value / max) * (height - 14);
    shapes.push(svg("rect", { class: "bar", x: k * slot, y: height - 12 - h, width: Math.max(1, bar), height: h }, svg("title", {}, `${item.label}: ${fmt(item.value)}`)));
    if (second) {
      const h2 = (second[k].value / max) * (height - 14);
      shapes.push(svg("rect", { class: "bar current", x: k * slot + slot / 2, y: height - 12 - h2, width: Math.max(1, bar), height: h2 }, svg("title", {}, `${second[k].label}: ${fmt(second[k].value)}`)));
    }
  });
  shapes.push(svg("text", { x: 0, y: height - 1 }, String(items[0].label)));
  shapes.push(svg("text", { x: width, y: height - 1, "text-anchor": "end" }, String(items[items.length - 1].label)));
  return svg("svg", { class: "histogram", width, height, viewBox: `0 0 ${width} ${height}` }, shapes);
}

async function loadDrift(target, name, offset) {
  const limit = 10;
  try {
    const data = await api(`views/${encodeURIComponent(name)}/drift?` + query({ offset, limit }));
    if (!data.drift.length) { target.replaceChildren(el("p", { class: "muted" }, "No drift checks recorded (featurestore drift).")); return; }
    const latest = data.drift[0];
    target.replaceChildren(
      el("h3", {}, "PSI over time"), psiPlot(data.drift),
      table(["when", "reference", "current", "drifted", "features"], data.drift.map((d) => [
        d.at, d.reference, d.current, el("span", { class: d.drifted ? "bad" : "ok" }, d.drifted ? "drifted: " + d.drifted_features.join(", ") : "no"),
        d.features.map((f) => el("div", {}, `${f.feature}: PSI ${fmt(f.psi, 3)}${f.ks !== null ? ", KS " + fmt(f.ks, 3) : ""}${f.redacted ? " (values withheld)" : ""}`))]), { id: "drift-table" }),
      pager(offset, limit, undefined, data.more, (o) => loadDrift(target, name, o)),
      el("h3", {}, `Distributions of the newest check (${latest.at}): reference in blue, current in orange`),
      el("div", { class: "cards" }, latest.features.filter((f) => f.bins && f.bins.length).map((f) => el("div", { class: "card drift-plot", "data-feature": f.feature },
        el("div", { class: "name" }, f.feature), bars(f.bins.map((b) => ({ label: b.label, value: b.reference_share })), f.bins.map((b) => ({ label: b.label, value: b.current_share })))))));
  } catch (error) { target.replaceChildren(failure(error)); }
}

function psiPlot(reports) {
  const ordered = reports.slice().reverse();
  const names = [...new Set(ordered.flatMap((r) => r.features.map((f) => f.feature)))];
  const width = 600, height = 140, pad = 30;
  const max = Math.max(0.25, ...ordered.flatMap((r) => r.features.map((f) => f.psi || 0)));
  const x = (k) => pad + (ordered.length > 1 ? (k * (width - 2 * pad)) / (ordered.length - 1) : (width - 2 * pad) / 2);
  const y = (v) => height - pad / 2 - ((v || 0) / max) * (height - pad);
  const colours = ["#2457c5", "#e0894a", "#1b7a3a", "#a4161a", "#8a5bb5", "#c98a2c"];
  const lines = names.map((name, n) => {
    const points = ordered.map((r, k) => { const f = r.features.find((g) => g.feature === name); return f ? `${x(k)},${y(f.psi)}` : null; }).filter(Boolean);
    return svg("g", {}, svg("polyline", { points: points.join(" "), fill: "none", stroke: colours[n % colours.length], "stroke-width": 1.5 }),
      svg("text", { x: width - pad + 4, y: 12 + 12 * n, fill: colours[n % colours.length] }, name));
  });
  return svg("svg", { id: "psi-plot", width: width + 120, height, viewBox: `0 0 ${width + 120} ${height}` },
    svg("line", { x1: pad, x2: width - pad, y1: y(0.2), y2: y(0.2), stroke: "#c44", "stroke-dasharray": "4 3" }),
    svg("text", { x: 2, y: y(0.2) + 4 }, "0.2"), lines);
}

async function loadValidations(target, name, offset) {
  const limit = 10;
  try {
    const data = await api(`views/${encodeURIComponent(name)}/validations?` + query({ offset, limit }));
    if (!data.validations.length) { target.replaceChildren(el("p", { class: "muted" }, "No validations recorded.")); return; }
    target.replaceChildren(
      table(["started", "trigger", "mode", "rows", "result", "checks"], data.validations.map((v) => [
        v.started_at, v.trigger, v.mode, v.rows, el("span", { class: v.success ? "ok" : "bad" }, v.success ? "passed" : "failed"),
        el("details", {}, el("summary", {}, `${v.checks.length} checks, ${v.checks.filter((c) => !c.success).length} failed`),
          v.checks.map((c) => el("div", { class: c.success ? "" : "bad" }, c.message)))]), { id: "validations-table" }),
      pager(offset, limit, undefined, data.more, (o) => loadValidations(target, name, o)));
  } catch (error) { target.replaceChildren(failure(error)); }
}

/* -- one on-demand view --------------------------------------------------------------------- */

async function onDemandPage(name) {
  const data = await api("on-demand/" + encodeURIComponent(name));
  const d = data.definition;
  const base = "on-demand/" + encodeURIComponent(name);
  const code = el("div", { id: "code-panel" });
  const showCode = async (version) => {
    code.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    try { code.replaceChildren(codeBlock((await api(`${base}/versions/${version}`)).definition)); } catch (error) { code.replaceChildren(failure(error)); }
  };
  const root = el("div", { id: "on-demand" },
    el("h1", {}, d.name, " ", el("span", { class: "muted" }, "v" + data.current_version), " ", el("span", { class: "kind" }, "on-demand view")),
    el("p", {}, d.description || "", " ", tags(d.tags)),
    el("p", { class: "muted" }, "owner: ", d.owner || "—", " · mode: ", el("code", { id: "mode" }, d.mode),
      " · ", el("a", { id: "od-lineage", href: "#/lineage?" + query({ focus: name, kind: "on_demand_feature_view" }) }, "lineage")),
    el("h2", {}, "Schema"),
    table(["feature", "type", "description", "tags"], d.features.map((f) => [f.name, f.dtype, f.description || "", tags(f.tags)]), { id: "od-schema" }),
    el("h2", {}, "Values"),
    data.values_readable
      ? el("p", { id: "od-values", class: "ok" }, "You may read its values: ", el("code", {}, `${name}:${d.features[0].name}`), " in a retrieval or an online lookup.")
      : el("p", { id: "od-values", class: "bad" }, "Its values and statistics are withheld from you: you may not read it or one of its inputs."),
    data.datasets.length
      ? table(["saved dataset", "its columns", "rows", "created"], data.datasets.map((s) => [s.name, s.columns.join(", "), s.rows, s.created_at]), { id: "od-datasets" })
      : el("p", { class: "muted", id: "od-datasets" }, "No saved dataset holds its features."),
    more(data.datasets.length, data.datasets_total, "more saved datasets"),
    el("h2", {}, "Inputs"), inputsTable(d.inputs),
    el("h2", {}, "Code"), code,
    el("h2", {}, "Versions"),
    versionsSection(base, data.versions, onDemandText, (v) => el("button", { class: "code-btn", "data-version": v.version, onclick: () => showCode(v.version) }, `code v${v.version}`)),
    el("h2", {}, "Lineage"), el("div", { id: "od-graph" }, el("p", { class: "muted" }, "Loading…")));
  code.replaceChildren(codeBlock(d));
  loadGraph(root.querySelector("#od-graph"), name);
  return root;
}

function inputsTable(inputs) {
  return table(["kind", "name", "features read", ""], inputs.map((i) => [
    i.kind === "request_source" ? "request source" : "feature view",
    i.kind === "feature_view" && i.name ? el("a", { href: pageOf("feature_view", i.name), class: "input-link" }, i.name) : (i.name || el("span", { class: "muted" }, "a view you may not see")),
    i.features.map((f) => el("div", {}, `${f.name} (${f.dtype})`, f.description ? el("span", { class: "muted" }, " " + f.description) : null)),
    i.hidden && i.name ? el("span", { class: "muted" }, `${i.hidden} feature(s) hidden from you`) : (i.description || "")]), { id: "od-inputs" });
}

function codeBlock(d) {
  if (d.code_withheld) return el("p", { class: "bad code-withheld" }, `v${d.version}: code withheld: it reads an input you may not see.`);
  const imports = d.code.imports.map((i) => i.attr ? `from ${i.module} import ${i.attr} as ${i.name}` : `import ${i.module} as ${i.name}`);
  const constants = Object.entries(d.code.constants).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  return el("div", {},
    el("p", { class: "muted" }, `v${d.version}: function ${d.code.function}, ${d.mode} mode`),
    imports.length || constants.length ? el("pre", { class: "code muted" }, [...imports, ...constants].join("\n")) : null,
    el("pre", { class: "code", id: "code", "data-version": d.version }, d.code.source));
}

function onDemandText(d) {
  // A version as the lines a diff compares: what it reads and serves, then its code.
  const lines = [`mode: ${d.mode}`, "features:", ...d.features.map((f) => `  ${f.name}: ${f.dtype}`), "inputs:"];
  for (const i of d.inputs) lines.push(`  ${i.kind === "request_source" ? "request " : ""}${i.name || "(hidden view)"}: ${i.features.map((f) => f.name).join(", ")}${i.hidden ? ` (+${i.hidden} hidden)` : ""}`);
  if (d.code_withheld) return [...lines, "code: withheld"];
  lines.push("imports:", ...d.code.imports.map((i) => `  ${i.name} = ${i.module}${i.attr ? "." + i.attr : ""}`));
  lines.push("constants:", ...Object.entries(d.code.constants).map(([k, v]) => `  ${k} = ${JSON.stringify(v)}`));
  return [...lines, "code:", ...d.code.source.split("\n")];
}

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

/* -- datasets ------------------------------------------------------------------------------- */

async function datasetsPage(_, params) {
  const offset = Number(params.get("offset") || 0), limit = 50;
  const data = await api("datasets?" + query({ offset, limit }));
  return el("div", {},
    el("h1", {}, "Saved datasets"),
    data.total ? table(["name", "views (exact versions)", "rows", "created", "by", "service", "columns"], data.datasets.map((d) => [
      d.name,
      [Object.entries(d.views).map(([v, n]) => el("div", {}, el("a", { href: "#/view/" + encodeURIComponent(v) }, `${v}@${n}`))),
        d.hidden_views ? el("div", { class: "muted" }, `${d.hidden_views} view(s) you may not see`) : null],
      d.rows, d.created_at, d.principal || "—", d.service || "—",
      el("span", { class: "muted" }, d.columns.join(", "))]), { id: "datasets" }) : el("p", { class: "muted", id: "datasets" }, "No saved datasets (job.save_dataset(name))."),
    pager(offset, limit, data.total, undefined, (o) => { location.hash = "#/datasets?offset=" + o; }));
}

/* -- audit ---------------------------------------------------------------------------------- */

async function auditPage(_, params) {
  const state = { principal: params.get("principal") || "", action: params.get("action") || "", resource: params.get("resource") || "", before: params.get("before") || "" };
  const data = await api("audit?" + query({ ...state, limit: 50 }));
  const inputs = ["principal", "action", "resource"].map((key) => el("input", { id: "audit-" + key, placeholder: key === "resource" ? "object" : key, value: state[key] }));
  const apply = () => { location.hash = "#/audit?" + query({ principal: inputs[0].value, action: inputs[1].value, resource: inputs[2].value }); };
  for (const input of inputs) input.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  return el("div", {},
    el("h1", {}, "Audit log"),
    el("div", { class: "toolbar" }, inputs, el("button", { id: "audit-apply", onclick: apply }, "Filter")),
    table(["#", "when", "principal", "action", "object", "outcome", "count", "detail"], data.records.map((r) => [
      r.id, r.at, r.principal || "anonymous", r.action, r.resource, el("span", { class: r.outcome === "denied" || r.outcome === "error" ? "bad" : "" }, r.outcome), r.count,
      el("code", {}, JSON.stringify(r.detail).slice(0, 160))]), { id: "audit" }),
    el("div", { class: "pager" },
      state.before ? el("a", { href: "#/audit?" + query({ ...state, before: "" }) }, "« Newest") : null,
      data.next_before ? el("a", { id: "audit-older", href: "#/audit?" + query({ ...state, before: data.next_before }) }, "Older ›") : el("span", { class: "muted" }, "end of the log")));
}

showWho();
route();
