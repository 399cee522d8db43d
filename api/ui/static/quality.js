/* featurestore UI: the View page's quality cards (statistics, drift, validation history), each
 * paged by the server. Loaded before app.js, whose helpers (el, svg, api, fmt, pager, failure,
 * drawn) they call when a page draws. */
"use strict";

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
