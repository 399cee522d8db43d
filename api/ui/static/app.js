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
