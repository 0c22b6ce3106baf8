// flowscan dashboard: graphs (out stacked above the axis, in below, as
// CUGrapher drew them), top talkers, exporters. Plain JavaScript, no build
// step; charts by uPlot. All state lives in the URL hash, so a view can be
// shared. Every value from the server is inserted as text, never as HTML.
"use strict";

const RANGES = ["1h", "6h", "12h", "1d", "2d", "1w", "1m", "3m", "1y", "2y", "5y"];
const UNITS = { bits: "b/s", packets: "p/s", flows: "f/s" };
let catalog = null;
let chart = null;
let timer = null;
let loadSeq = 0;

// ---------- helpers ----------
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}
function si(v, digits = 2) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  const units = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [d, s] of units) if (a >= d) return (v / d).toFixed(digits) + " " + s;
  return v.toFixed(a < 10 && a !== 0 ? digits : 0) + " ";
}
// skippedNote warns about flow files the explorer could not read and left
// out of the answer (an empty text node when there are none).
function skippedNote(data) {
  const skipped = data.skipped || [];
  if (skipped.length === 0) return document.createTextNode("");
  return el("p", { class: "error", role: "alert", id: "flow-skipped" },
    `${skipped.length} unreadable flow file${skipped.length > 1 ? "s or blocks" : " or block"} left out: ${skipped.slice(0, 3).join("; ")}${skipped.length > 3 ? "; …" : ""}`);
}
function pct(v) { return (v || 0).toFixed(1) + "%"; }
function fmtTime(sec) { return new Date(sec * 1000).toLocaleString(); }
function parseHash() {
  const h = location.hash.replace(/^#\/?/, "");
  const [view, qs] = h.split("?");
  return { view: view || "graph", params: new URLSearchParams(qs || "") };
}
function setHash(view, params, replace) {
  const s = "#/" + view + (params.toString() ? "?" + params.toString() : "");
  if (s === location.hash) return false;
  if (replace) history.replaceState(null, "", s); else location.hash = s; // fires hashchange
  return true;
}
async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await r.json(); } catch (e) { /* not JSON */ }
  if (!r.ok) throw new Error((body && body.error) || r.status + " " + r.statusText);
  return body;
}
function main() { return document.getElementById("main"); }
function showError(where, err) {
  where.replaceChildren(el("p", { class: "error", role: "alert" }, String(err.message || err)));
}
function stopTimer() { if (timer) { clearInterval(timer); timer = null; } }
function destroyChart() { if (chart) { chart.destroy(); chart = null; } }

// ---------- routing ----------
async function route() {
  stopTimer();
  destroyChart();
  const { view, params } = parseHash();
  document.querySelectorAll("nav a").forEach(a => a.classList.toggle("active", a.dataset.view === view || (view === "host" && a.dataset.view === "scoreboard")));
  try {
    if (!catalog) {
      catalog = await api("/api/v1/catalog");
      document.getElementById("title").textContent = catalog.title;
      document.title = catalog.title + " · flowscan";
    }
    if (view === "scoreboard") return await scoreboardView(params);
    if (view === "host") return await hostView(params);
    if (view === "exporters") return await exportersView(params);
    if (view === "flows") return await flowsView(params);
    return await graphView(params);
  } catch (e) { showError(main(), e); }
}
window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", route);

// rangeControls returns the range buttons and the custom from/to inputs
// of a view whose state st has range, from and to; apply runs after a change.
function rangeControls(st, apply) {
  const ranges = el("div", { class: "ranges", role: "group", "aria-label": "time range" }, RANGES.map(r =>
    el("button", { type: "button", class: "range-btn" + (!st.from && st.range === r ? " active" : ""), dataset: { range: r }, onclick: () => { st.range = r; st.from = st.to = ""; apply(); } }, r)));
  const toLocal = s => { const d = new Date(s * 1000 - new Date().getTimezoneOffset() * 60000); return d.toISOString().slice(0, 16); };
  const fromIn = el("input", { type: "datetime-local", id: "from", "aria-label": "from", value: st.from ? toLocal(+st.from) : "" });
  const toIn = el("input", { type: "datetime-local", id: "to", "aria-label": "to", value: st.to ? toLocal(+st.to) : "" });
  const custom = el("span", {}, fromIn, " – ", toIn, el("button", { type: "button", onclick: () => {
    const f = Date.parse(fromIn.value) / 1000, t = toIn.value ? Date.parse(toIn.value) / 1000 : Math.floor(Date.now() / 1000);
    if (f && t && f < t) { st.from = String(Math.floor(f)); st.to = String(Math.floor(t)); apply(); }
  } }, "Apply"));
  return [ranges, custom];
}

// ---------- graph view ----------
function graphState(params) {
  const mods = catalog.modules;
  let mod = mods.find(m => m.name === params.get("module")) || mods[0];
  if (!mod) return null;
  let router = mod.routers.find(r => r.id === params.get("router")) || mod.routers[0];
  const known = new Set(router.items.map(i => i.id));
  let items = (params.get("items") || "").split(",").filter(i => known.has(i));
  if (!params.get("items")) items = known.has("total") ? ["total"] : router.items.slice(0, 1).map(i => i.id);
  const st = { module: mod.name, router: router.id, items, unit: UNITS[params.get("unit")] ? params.get("unit") : "bits",
    range: params.get("range") || "", from: params.get("from") || "", to: params.get("to") || "",
    compare: params.get("compare") === "1", refresh: params.get("refresh") || "60", mod, routerObj: router };
  if (!st.from && !st.range) st.range = "1d";
  return st;
}
function stateParams(st) {
  const p = new URLSearchParams();
  p.set("module", st.module); p.set("router", st.router); p.set("items", st.items.join(","));
  p.set("unit", st.unit);
  if (st.from) { p.set("from", st.from); if (st.to) p.set("to", st.to); } else p.set("range", st.range);
  if (st.compare) p.set("compare", "1");
  if (st.refresh !== "60") p.set("refresh", st.refresh);
  return p;
}
function apiParams(st) {
  const p = stateParams(st);
  p.delete("refresh");
  return p;
}
function go(st) { if (!setHash("graph", stateParams(st))) route(); }

async function graphView(params) {
  const m = main();
  const st = graphState(params);
  if (!st) { m.replaceChildren(el("p", { class: "note" }, "No RRD files yet: the report modules have written nothing.")); return; }
  const itemsByKind = {};
  for (const it of st.routerObj.items) (itemsByKind[it.kind] = itemsByKind[it.kind] || []).push(it);
  const selected = new Set(st.items);
  const picker = el("div", { class: "picker", id: "picker" });
  for (const kind of catalog.kinds) {
    const list = itemsByKind[kind];
    if (!list) continue;
    const fs = el("fieldset", { dataset: { kind } }, el("legend", {}, kind === "as" ? "AS" : kind === "tos" ? "TOS" : kind,
      el("button", { class: "kindbtn", type: "button", title: "select all", onclick: () => { list.forEach(i => selected.add(i.id)); st.items = [...selected]; go(st); } }, "all"),
      el("button", { class: "kindbtn", type: "button", title: "select none", onclick: () => { list.forEach(i => selected.delete(i.id)); st.items = [...selected]; go(st); } }, "none")));
    for (const it of list) {
      fs.append(el("label", { title: it.id }, el("input", { type: "checkbox", checked: selected.has(it.id), dataset: { item: it.id },
        onchange: e => { if (e.target.checked) selected.add(it.id); else selected.delete(it.id); st.items = st.routerObj.items.map(i => i.id).filter(i => selected.has(i)); go(st); } }), " " + it.label));
    }
    picker.append(fs);
  }
  const modSel = el("select", { id: "module", "aria-label": "module", onchange: e => { st.module = e.target.value; st.router = ""; st.items = []; const p = stateParams(st); p.delete("items"); p.delete("router"); setHash("graph", p); } },
    catalog.modules.map(mo => el("option", { value: mo.name, selected: mo.name === st.module }, mo.name)));
  const routerSel = el("select", { id: "router", "aria-label": "router", onchange: e => { st.router = e.target.value; const p = stateParams(st); setHash("graph", p); } },
    st.mod.routers.map(r => el("option", { value: r.id, selected: r.id === st.router }, r.id === "all" ? "all routers" : r.label)));
  const unitSel = el("select", { id: "unit", "aria-label": "unit", onchange: e => { st.unit = e.target.value; go(st); } },
    Object.keys(UNITS).map(u => el("option", { value: u, selected: u === st.unit }, u + "/s")));
  const [ranges, custom] = rangeControls(st, () => go(st));
  const compare = el("label", {}, el("input", { type: "checkbox", id: "compare", checked: st.compare, onchange: e => { st.compare = e.target.checked; go(st); } }), " previous period");
  const refresh = el("label", {}, "refresh ", el("select", { id: "refresh", onchange: e => { st.refresh = e.target.value; go(st); } },
    [["0", "off"], ["60", "1 min"], ["300", "5 min"]].map(([v, t]) => el("option", { value: v, selected: v === st.refresh }, t))));
  const imgParams = () => { const p = apiParams(st); p.delete("compare"); return p.toString(); };
  const exportLinks = el("span", { class: "export" }, el("a", { href: "/api/v1/graph.png?" + imgParams(), id: "png", target: "_blank" }, "PNG"),
    el("a", { href: "/api/v1/graph.svg?" + imgParams(), id: "svg", target: "_blank" }, "SVG"),
    el("a", { href: "/api/v1/series?" + apiParams(st).toString(), id: "json", target: "_blank" }, "JSON"));
  const hover = el("div", { class: "hover", id: "hover" }, "\u00a0");
  const chartDiv = el("div", { id: "chart" });
  const legend = el("div", { class: "tablewrap", id: "legend" });
  m.replaceChildren(
    el("div", { class: "controls" }, modSel, routerSel, unitSel, ranges, custom),
    el("div", { class: "controls" }, compare, refresh, exportLinks, el("span", { class: "note" }, "drag on the chart to zoom")),
    el("div", { class: "layout" }, picker, el("div", {}, hover, chartDiv, legend)));
  if (st.from || st.range !== undefined) setHash("graph", stateParams(st), true);
  const load = () => loadSeries(st, chartDiv, legend, hover).catch(e => showError(legend, e));
  await load();
  const every = +st.refresh;
  if (every > 0 && !st.to) timer = setInterval(load, every * 1000);
}

// stack returns cumulative arrays (null where every value is unknown).
function stack(list, key) {
  const out = [];
  let acc = null;
  for (const s of list) {
    const cur = s[key].map((v, i) => {
      const prev = acc ? acc[i] : null;
      if (v === null) return prev;
      return (prev || 0) + v;
    });
    out.push(cur);
    acc = cur;
  }
  return out;
}

async function loadSeries(st, chartDiv, legend, hover) {
  const seq = ++loadSeq;
  if (st.items.length === 0) {
    destroyChart();
    chartDiv.replaceChildren(el("p", { class: "note" }, "Pick something to graph on the left."));
    legend.replaceChildren();
    document.body.dataset.plotted = "";
    return;
  }
  const data = await api("/api/v1/series?" + apiParams(st).toString());
  if (seq !== loadSeq) return;
  const palette = catalog.palette;
  const bands = [], lines = [];
  data.series.forEach((s, i) => {
    s.color = s.kind === "total" ? "#000000" : s.other ? "#c8c8c8" : "#" + palette[i % palette.length];
    (s.kind === "total" ? lines : bands).push(s);
  });
  const outCum = stack(bands, "out"), inCum = stack(bands, "in");
  const xs = data.times;
  const series = [{}], arrays = [xs], raw = [null];
  // Largest cumulative first, each filled to zero: the result is stacked bands.
  for (let i = bands.length - 1; i >= 0; i--) {
    series.push({ label: bands[i].label + " out", stroke: bands[i].color, fill: bands[i].color, width: 0, points: { show: false } });
    arrays.push(outCum[i]); raw.push({ s: bands[i], dir: "out" });
  }
  for (let i = bands.length - 1; i >= 0; i--) {
    series.push({ label: bands[i].label + " in", stroke: bands[i].color, fill: bands[i].color, width: 0, points: { show: false } });
    arrays.push(inCum[i]); raw.push({ s: bands[i], dir: "in" });
  }
  for (const s of lines) {
    series.push({ label: s.label + " out", stroke: "#000", width: 1.5, points: { show: false } }); arrays.push(s.out); raw.push({ s, dir: "out" });
    series.push({ label: s.label + " in", stroke: "#000", width: 1.5, points: { show: false } }); arrays.push(s.in); raw.push({ s, dir: "in" });
  }
  if (data.previous) {
    series.push({ label: "previous out", stroke: "#666", dash: [6, 4], width: 1.2, points: { show: false } }); arrays.push(data.previous.out); raw.push({ prev: "out" });
    series.push({ label: "previous in", stroke: "#666", dash: [6, 4], width: 1.2, points: { show: false } }); arrays.push(data.previous.in); raw.push({ prev: "in" });
  }
  const unit = UNITS[st.unit];
  renderLegend(legend, data, unit);
  const width = Math.max(280, chartDiv.clientWidth || 800);
  const height = Math.max(260, Math.min(480, Math.round(width * 0.45)));
  const opts = {
    width, height, legend: { show: false },
    cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
    scales: { x: { time: true } },
    axes: [{}, { size: 84, values: (u, vals) => vals.map(v => si(v, 1) + unit) }],
    series,
    hooks: {
      setSelect: [u => {
        if (u.select.width < 5) return;
        const f = Math.floor(u.posToVal(u.select.left, "x")), t = Math.ceil(u.posToVal(u.select.left + u.select.width, "x"));
        u.setSelect({ width: 0, height: 0 }, false);
        if (t - f >= 60) { st.from = String(f); st.to = String(t); go(st); }
      }],
      setCursor: [u => {
        const i = u.cursor.idx;
        if (i === null || i === undefined) { hover.textContent = "\u00a0"; return; }
        const parts = [fmtTime(xs[i])];
        for (const s of data.series) {
          const o = s.out[i], n = s.in[i];
          parts.push(s.label + ": out " + si(o) + unit + ", in " + si(n === null ? null : -n) + unit);
          const cell = legend.querySelector('tr[data-series="' + CSS.escape(s.id) + '"] td.now');
          if (cell) cell.textContent = si(o) + " / " + si(n === null ? null : -n);
        }
        hover.textContent = parts.slice(0, 8).join(" · ") + (parts.length > 8 ? " …" : "");
      }],
    },
  };
  destroyChart();
  chartDiv.replaceChildren();
  chart = new uPlot(opts, arrays, chartDiv);
  document.body.dataset.plotted = data.series.map(s => s.id).join(",");
  document.body.dataset.points = String(xs.length);
  document.body.dataset.nonzero = String(data.series.some(s => s.out.some(v => v) || s.in.some(v => v)));
  document.body.dataset.loads = String(+(document.body.dataset.loads || 0) + 1);
}

function renderLegend(legend, data, unit) {
  const head = el("tr", {}, el("th", { class: "l" }, "series"), el("th", {}, ""),
    ["average", "maximum", "95th pct", "total", "share"].map(h => el("th", {}, h)), el("th", {}, "at cursor out / in"));
  const rows = [];
  const totalUnit = unit.replace("/s", "");
  for (const s of data.series) {
    for (const dir of ["out", "in"]) {
      const st = dir === "out" ? s.out_stats : s.in_stats;
      rows.push(el("tr", dir === "out" ? { dataset: { series: s.id } } : {},
        el("td", { class: "l" }, dir === "out" ? [el("span", { class: "swatch" }), s.label] : ""),
        el("td", { class: "l" }, dir),
        el("td", {}, si(st.avg) + unit), el("td", {}, si(st.max) + unit), el("td", {}, si(st.p95) + unit),
        el("td", {}, si(st.total) + totalUnit), el("td", {}, pct(st.percent)),
        dir === "out" ? el("td", { class: "now" }, "") : el("td", {}, "")));
    }
  }
  legend.replaceChildren(el("table", { id: "legend-table" }, el("thead", {}, head), el("tbody", {}, rows)),
    el("p", { class: "note" }, "Shares are of " + (data.percent_of === "total" ? "the total" : "the selection") + "; out is drawn above the axis, in below it; step " + data.step + " s."));
  // Swatch colours are set through the DOM (no inline style attributes under the CSP).
  let i = 0;
  legend.querySelectorAll("tr[data-series] .swatch").forEach(sw => { sw.style.background = data.series[i++].color; });
}

// ---------- scoreboards ----------
// fileFlowsWindow is the flow explorer's window for a scoreboard of one
// file (page.start, page.end): the file counts flows that started up to an
// active timeout before it, so the window (by flow start) opens that much
// earlier (5 minutes, or the file's length if longer).
function fileFlowsWindow(page) {
  const from = Math.floor(Date.parse(page.start) / 1000), to = Math.ceil(Date.parse(page.end) / 1000);
  return { from: String(from - Math.max(300, to - from)), to: String(to) };
}

function hostLink(addr, name, extra) {
  const q = new URLSearchParams(Object.assign({ addr }, extra || {}));
  return el("a", { href: "#/host?" + q.toString(), class: "host", dataset: { addr } }, name ? name + " (" + addr + ")" : addr);
}
async function scoreboardView(params) {
  const m = main();
  const jkDirs = catalog.jkflow_scoreboards || [];
  let kind = ["aggregate", "clickhouse", "current", "jkflow"].includes(params.get("kind")) ? params.get("kind") : "";
  if (!kind) kind = catalog.scoreboard ? "current" : catalog.clickhouse ? "clickhouse" : jkDirs.length ? "jkflow" : "current";
  const q = new URLSearchParams({ kind });
  if (kind === "current" && params.get("page")) q.set("page", params.get("page"));
  const nav = el("div", { class: "controls" },
    el("button", { type: "button", class: kind === "current" ? "active" : "", id: "sb-current", onclick: () => setHash("scoreboard", new URLSearchParams({ kind: "current" })) }, "Latest"),
    el("button", { type: "button", class: kind === "aggregate" ? "active" : "", id: "sb-aggregate", disabled: !catalog.aggregate, onclick: () => setHash("scoreboard", new URLSearchParams({ kind: "aggregate" })) }, "Aggregate"),
    catalog.clickhouse && el("button", { type: "button", class: kind === "clickhouse" ? "active" : "", id: "sb-clickhouse", onclick: () => setHash("scoreboard", new URLSearchParams({ kind: "clickhouse" })) }, "ClickHouse"),
    jkDirs.length > 0 && el("button", { type: "button", class: kind === "jkflow" ? "active" : "", id: "sb-jkflow", onclick: () => setHash("scoreboard", new URLSearchParams({ kind: "jkflow" })) }, "jkflow"));
  if (kind === "jkflow") {
    // A direction of the jkflow module: its latest scoreboard.
    if (!jkDirs.length) { m.replaceChildren(nav, el("p", { class: "note" }, "No jkflow scoreboard found.")); return; }
    const direction = jkDirs.includes(params.get("direction")) ? params.get("direction") : jkDirs[0];
    nav.append(el("label", {}, "direction ", el("select", { id: "sb-direction", "aria-label": "jkflow direction",
      onchange: e => setHash("scoreboard", new URLSearchParams({ kind, direction: e.target.value })) },
      jkDirs.map(d => el("option", { value: d, selected: d === direction }, d)))));
    m.replaceChildren(nav, el("p", { class: "note" }, "Loading…"));
    const page = await api("/api/v1/scoreboard?" + new URLSearchParams({ kind, direction }).toString());
    return jkflowBoard(m, nav, page);
  }
  if (kind === "clickhouse") {
    // A window (range buttons) and an exporter of the clickhouse module.
    const range = RANGES.slice(0, 8).includes(params.get("range")) ? params.get("range") : "1h";
    const mod = catalog.modules.find(mo => mo.name === "clickhouse");
    const routers = mod ? mod.routers : [];
    const router = routers.some(r => r.id === params.get("router")) ? params.get("router") : "all";
    q.set("range", range); q.set("router", router);
    const again = (r, ro) => setHash("scoreboard", new URLSearchParams({ kind, range: r, router: ro }));
    nav.append(el("select", { id: "sb-router", "aria-label": "exporter", onchange: e => again(range, e.target.value) },
      routers.map(r => el("option", { value: r.id, selected: r.id === router }, r.label))),
      el("div", { class: "ranges", role: "group", "aria-label": "time range" }, RANGES.slice(0, 8).map(r =>
        el("button", { type: "button", class: "range-btn" + (r === range ? " active" : ""), dataset: { range: r }, onclick: () => again(r, router) }, r))));
  }
  m.replaceChildren(nav, el("p", { class: "note" }, "Loading…"));
  if (!catalog.scoreboard && kind === "current") { m.replaceChildren(nav, el("p", { class: "note" }, "No scoreboard configured (cuflow scoreboard.dir).")); return; }
  const page = await api("/api/v1/scoreboard?" + q.toString());
  if (kind === "current") {
    nav.append(el("button", { type: "button", disabled: !page.previous, onclick: () => setHash("scoreboard", new URLSearchParams({ kind, page: page.previous })) }, "◀ earlier"),
      el("button", { type: "button", disabled: !page.next, onclick: () => setHash("scoreboard", new URLSearchParams({ kind, page: page.next })) }, "later ▶"));
  }
  const info = kind === "current"
    ? `${fmtTime(Date.parse(page.start) / 1000)} – ${fmtTime(Date.parse(page.end) / 1000)}; total in ${si(page.total_in.bits_per_second)}b/s, out ${si(page.total_out.bits_per_second)}b/s`
    : kind === "clickhouse"
      ? `${fmtTime(Date.parse(page.start) / 1000)} – ${fmtTime(Date.parse(page.end) / 1000)}; total ${si(page.total_out.bits_per_second)}b/s; out: as source, in: as destination`
      : `average rates over the reports each host was in a top ${page.top_n}`;
  const boards = el("div", { class: "boards" });
  // The explorer's window for a host: the scoreboard page's, or its range.
  const fsrc = catalog.flow_sources || [];
  const flowsOn = fsrc.length > 0;
  const flowsWindow = kind === "current" ? fileFlowsWindow(page)
    : kind === "clickhouse" ? { range: q.get("range") } : { range: "1d" };
  if (kind === "clickhouse" && fsrc.includes("clickhouse")) flowsWindow.source = "clickhouse";
  const rate = { bytes: ["bits_per_second", "b/s"], packets: ["packets_per_second", "p/s"], flows: ["flows_per_second", "f/s"] };
  const share = { bytes: "bytes_percent", packets: "packets_percent", flows: "flows_percent" };
  for (const t of page.tables) {
    const [rk, ru] = rate[t.metric];
    boards.append(el("div", { class: "tablewrap" }, el("h3", {}, `Top ${t.hosts.length} by ${t.metric} ${t.direction}`),
      el("table", { class: "board", dataset: { direction: t.direction, metric: t.metric } },
        el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", { class: "l" }, "host"), el("th", {}, "in"), el("th", {}, "out"), el("th", {}, "share"), flowsOn && el("th", {}, ""))),
        el("tbody", {}, t.hosts.map(h => el("tr", {}, el("td", {}, h.rank), el("td", { class: "l" }, kind === "clickhouse" ? hostLink(h.address, h.name, { source: "clickhouse", router: q.get("router"), range: q.get("range") }) : hostLink(h.address, h.name)),
          el("td", {}, si(h.in[rk]) + ru), el("td", {}, si(h.out[rk]) + ru), el("td", {}, pct(h[t.direction][share[t.metric]])),
          flowsOn && el("td", {}, el("a", { class: "flows-link", href: flowsLink(h.address, flowsWindow), title: "the flows of " + h.address }, "flows"))))))));
  }
  m.replaceChildren(nav, el("h2", {}, page.title), el("p", { class: "note" }, info), boards);
}

// jkflowBoard shows a jkflow direction's latest scoreboard: top hosts and
// ports by bytes in + out. Hosts link to their page and, like ports, to
// the flow explorer over the file's interval (the filter comes with each line).
function jkflowBoard(m, nav, page) {
  const flowsOn = (catalog.flow_sources || []).length > 0;
  const win = fileFlowsWindow(page);
  const explore = filter => "#/flows?" + new URLSearchParams(Object.assign({ filter }, win)).toString();
  // Rates in and out, then the ranking's bytes (in + out) and the flows, split in a tooltip.
  const cells = e => [el("td", {}, si(e.in_bits_per_second) + "b/s"), el("td", {}, si(e.out_bits_per_second) + "b/s"),
    el("td", { title: `in ${e.in_bytes}, out ${e.out_bytes}` }, si(e.in_bytes + e.out_bytes) + "B"),
    el("td", { title: `in ${e.in_flows}, out ${e.out_flows}` }, e.in_flows + e.out_flows)];
  const table = (what, rows, first, last) => el("div", { class: "tablewrap" }, el("h3", {}, `Top ${rows.length} ${what} by bytes`),
    el("table", { class: "board", id: "jk-" + what },
      el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", { class: "l" }, what === "hosts" ? "host" : "port"),
        ["in", "out", "bytes", "flows"].map(h => el("th", {}, h)), last && el("th", {}, ""))),
      el("tbody", {}, rows.map(e => el("tr", { dataset: { key: e.key } }, el("td", {}, e.rank), el("td", { class: "l" }, first(e)), cells(e), last && el("td", {}, last(e)))))));
  const hostCell = e => e.filter ? hostLink(e.key) : e.key;
  const hostFlows = flowsOn && (e => e.filter ? el("a", { class: "flows-link", href: explore(e.filter), title: "the flows of " + e.key }, "flows") : "");
  const portCell = e => flowsOn && e.filter ? el("a", { class: "port-link", href: explore(e.filter), title: e.filter }, e.key) : e.key;
  const boards = el("div", { class: "boards" });
  if (page.hosts.length) boards.append(table("hosts", page.hosts, hostCell, hostFlows));
  if (page.ports.length) boards.append(table("ports", page.ports, portCell, null));
  const info = `${page.file}: ${fmtTime(Date.parse(page.start) / 1000)} – ${fmtTime(Date.parse(page.end) / 1000)}; rates over ${Math.round(page.seconds)} s; ` +
    "out: the direction's from side sent, in: it received";
  m.replaceChildren(nav, el("h2", {}, "jkflow direction " + page.direction), el("p", { class: "note" }, info),
    page.hosts.length || page.ports.length ? boards : el("p", { class: "note" }, "This scoreboard is empty."));
  document.body.dataset.jkflowRows = String(page.hosts.length + page.ports.length);
}

async function hostView(params) {
  const m = main();
  const addr = params.get("addr") || "";
  const range = RANGES.includes(params.get("range")) ? params.get("range") : "1d";
  // source=clickhouse: the host's traffic per time bucket from ClickHouse, else what the scoreboards say.
  const ch = params.get("source") === "clickhouse";
  const base = ch ? { addr, source: "clickhouse", router: params.get("router") || "all" } : { addr };
  const data = await api("/api/v1/host?" + new URLSearchParams(Object.assign({ range }, base)).toString());
  const ranges = el("div", { class: "ranges" }, RANGES.slice(0, 8).map(r => el("button", { type: "button", class: "range-btn" + (r === range ? " active" : ""), dataset: { range: r },
    onclick: () => setHash("host", new URLSearchParams(Object.assign({ range: r }, base))) }, r)));
  const chartDiv = el("div", { id: "chart" });
  const when = p => ch ? fmtTime(Date.parse(p.start) / 1000) : el("a", { href: "#/scoreboard?" + new URLSearchParams({ kind: "current", page: p.page }) }, fmtTime(Date.parse(p.start) / 1000));
  const rows = data.points.slice().reverse().map(p => el("tr", {}, el("td", { class: "l" }, when(p)),
    el("td", {}, si(p.in.bits_per_second) + "b/s"), el("td", {}, si(p.out.bits_per_second) + "b/s"),
    el("td", {}, si(p.in.packets_per_second) + "p/s"), el("td", {}, si(p.out.packets_per_second) + "p/s"),
    el("td", { class: "l" }, Object.entries(p.ranks).map(([k, v]) => "#" + v + " " + k).join(", "))));
  m.replaceChildren(el("h2", { id: "host-title" }, "Host " + data.address + (data.name ? " (" + data.name + ")" : "")),
    el("div", { class: "controls" }, ranges, (catalog.flow_sources || []).length > 0 &&
      el("a", { id: "host-flows", href: flowsLink(data.address, Object.assign({ range }, ch && catalog.flow_sources.includes("clickhouse") ? { source: "clickhouse" } : {})) }, "flows of this host")),
    el("p", { class: "note" }, (ch ? `ClickHouse: ${data.points.length} of ${data.pages_searched} time buckets have traffic of this host` : `${data.points.length} of ${data.pages_searched} scoreboard pages list this host`) +
      (data.aggregate ? `; aggregate: in ${si(data.aggregate.in.bits_per_second)}b/s, out ${si(data.aggregate.out.bits_per_second)}b/s on average` : "")),
    chartDiv,
    el("div", { class: "tablewrap" }, el("table", { id: "host-table" }, el("thead", {}, el("tr", {}, el("th", { class: "l" }, ch ? "time" : "scoreboard"), el("th", {}, "bits in"), el("th", {}, "bits out"),
      el("th", {}, "pkts in"), el("th", {}, "pkts out"), el("th", { class: "l" }, "ranks"))), el("tbody", {}, rows))));
  document.body.dataset.hostPoints = String(data.points.length);
  if (data.points.length > 0) {
    const xs = data.points.map(p => Date.parse(p.end) / 1000);
    const width = Math.max(280, chartDiv.clientWidth || 800);
    chart = new uPlot({ width, height: 260, legend: { show: true }, scales: { x: { time: true, range: () => [data.from, data.to] } },
      axes: [{}, { size: 84, values: (u, vals) => vals.map(v => si(v, 1) + "b/s") }],
      series: [{}, { label: "out", stroke: "#1f77b4", fill: "#1f77b466", paths: uPlot.paths.stepped({ align: -1 }) },
        { label: "in", stroke: "#ff7f0e", fill: "#ff7f0e66", paths: uPlot.paths.stepped({ align: -1 }) }] },
    [xs, data.points.map(p => p.out.bits_per_second), data.points.map(p => -p.in.bits_per_second)], chartDiv);
  } else chartDiv.replaceChildren(el("p", { class: "note" }, ch ? "No traffic of this host in this period." : "Not in any top list in this period."));
}

// ---------- exporters ----------
async function exportersView() {
  const m = main();
  const render = async () => {
    const data = await api("/api/v1/exporters");
    const head = el("tr", {}, ["exporter", "format", "domain"].map(h => el("th", { class: "l" }, h)),
      ["flows/s", "flows", "datagrams", "lost flows", "lost %", "sampling", "templates", "last seen", "status"].map(h => el("th", {}, h)));
    const rows = data.exporters.map(e => el("tr", { class: e.silent ? "silent" : "", dataset: { exporter: e.exporter } },
      el("td", { class: "l" }, e.exporter), el("td", { class: "l" }, e.format), el("td", { class: "l" }, e.domain),
      el("td", {}, si(e.flows_per_second)), el("td", {}, e.flows), el("td", {}, e.datagrams), el("td", {}, e.lost_flows),
      el("td", {}, pct(e.lost_percent)), el("td", {}, e.sampling_rate > 1 ? "1:" + e.sampling_rate : "none"),
      el("td", {}, data.source === "live" ? e.templates : "–"),
      el("td", {}, e.last_seen && !e.last_seen.startsWith("0001") ? fmtTime(Date.parse(e.last_seen) / 1000) + " (" + Math.round(e.age_seconds) + " s ago)" : "never"),
      el("td", {}, e.silent ? "SILENT" : "ok")));
    const src = data.source === "live" ? "live from the collector" : data.source === "archive" ? `from the metadata of the last ${data.files} flow files` : "no source configured";
    m.replaceChildren(el("h2", {}, "Exporters"), el("p", { class: "note" }, src + "; a router silent for too long is marked."),
      el("div", { class: "tablewrap" }, el("table", { id: "exporters" }, el("thead", {}, head), el("tbody", {}, rows))));
  };
  await render();
  timer = setInterval(() => render().catch(e => showError(m, e)), 30000);
}

// ---------- flow explorer ----------
// The top groups of the flows matching a filter (or the flows themselves)
// from /api/v1/flows. Clicking a key value adds it to the filter.
const FLOW_BY = ["src_addr", "dst_addr", "src_addr,dst_addr", "src_addr/24", "dst_addr/24", "dst_port", "src_port", "proto",
  "proto,dst_port", "src_addr,dst_port", "dst_addr,dst_port", "exporter", "next_hop", "in_if", "out_if", "src_as", "dst_as", "tos"];
const FLOW_ORDERS = ["bytes", "packets", "flows", "bps", "pps", "bpp"];
const FLOW_ROWS = ["10", "20", "50", "100", "500", "1000"];

// flowsLink is the explorer's URL for a host (a scoreboard entry, a host page).
function flowsLink(addr, extra) {
  const p = new URLSearchParams(Object.assign({ filter: "host " + addr }, extra || {}));
  if (!p.get("from") && !p.get("range")) p.set("range", "1h");
  return "#/flows?" + p.toString();
}
function flowsState(params) {
  const st = { filter: params.get("filter") || "", by: params.get("by") || "src_addr", order: FLOW_ORDERS.includes(params.get("order")) ? params.get("order") : "bytes",
    rows: params.get("list") || params.get("top") || "20", list: !!params.get("list"), source: params.get("source") || "",
    range: params.get("range") || "", from: params.get("from") || "", to: params.get("to") || "" };
  if (!st.from && !st.range) st.range = "1h";
  if (!/^[0-9]{1,5}$/.test(st.rows)) st.rows = "20";
  return st;
}
function flowsParams(st) {
  const p = new URLSearchParams();
  if (st.filter) p.set("filter", st.filter);
  if (st.from) { p.set("from", st.from); if (st.to) p.set("to", st.to); } else p.set("range", st.range);
  if (st.list) p.set("list", st.rows);
  else { p.set("by", st.by); p.set("order", st.order); p.set("top", st.rows); }
  if (st.source) p.set("source", st.source);
  return p;
}
// addTerm adds a condition to a filter with "and", bracketing a filter that has an "or".
function addTerm(filter, term) {
  filter = filter.trim();
  if (!filter) return term;
  if (/(^|[\s)])(or|\|\|)([\s(]|$)/i.test(filter)) filter = "(" + filter + ")";
  return filter + " and " + term;
}

async function flowsView(params) {
  const m = main();
  const sources = catalog.flow_sources || [];
  if (sources.length === 0) {
    m.replaceChildren(el("h2", {}, "Flows"), el("p", { class: "note" }, "No flow source: start flowscan web with the flow archive (--dir) or ClickHouse."));
    return;
  }
  const st = flowsState(params);
  if (st.source && !sources.includes(st.source)) st.source = "";
  const run = () => { if (!setHash("flows", flowsParams(st))) route(); };
  const sync = () => { st.filter = filterIn.value.trim(); };
  const filterIn = el("input", { type: "search", id: "flow-filter", class: "filter", "aria-label": "filter", value: st.filter, spellcheck: "false",
    placeholder: "filter, e.g. proto tcp and dst port 443 and not net 10.0.0.0/8", maxlength: "1000",
    onkeydown: e => { if (e.key === "Enter") { e.preventDefault(); sync(); run(); } } });
  const runBtn = el("button", { type: "button", id: "flow-run", class: "active", onclick: () => { sync(); run(); } }, "Run");
  const byOpts = FLOW_BY.includes(st.by) ? FLOW_BY : [st.by, ...FLOW_BY];
  const bySel = el("select", { id: "flow-by", "aria-label": "group by", onchange: e => {
    sync();
    if (e.target.value === "list") st.list = true; else { st.list = false; st.by = e.target.value; }
    run();
  } }, el("option", { value: "list", selected: st.list }, "list flows"),
  byOpts.map(b => el("option", { value: b, selected: !st.list && b === st.by }, "by " + b)));
  const orderSel = el("select", { id: "flow-order", "aria-label": "order", disabled: st.list, onchange: e => { sync(); st.order = e.target.value; run(); } },
    FLOW_ORDERS.map(o => el("option", { value: o, selected: o === st.order }, "order by " + o)));
  const rowOpts = FLOW_ROWS.includes(st.rows) ? FLOW_ROWS : [st.rows, ...FLOW_ROWS];
  const rowsSel = el("select", { id: "flow-top", "aria-label": "rows", onchange: e => { sync(); st.rows = e.target.value; run(); } },
    rowOpts.map(n => el("option", { value: n, selected: n === st.rows }, (st.list ? "first " : "top ") + n)));
  const srcSel = sources.length > 1 && el("select", { id: "flow-source", "aria-label": "source", onchange: e => { sync(); st.source = e.target.value; run(); } },
    sources.map(s => el("option", { value: s, selected: s === (st.source || sources[0]) }, s === "files" ? "flow archive" : "ClickHouse")));
  const [ranges, custom] = rangeControls(st, () => { sync(); run(); });
  const out = el("div", { id: "flow-result" }, el("p", { class: "note" }, "Running…"));
  const apiLink = el("a", { href: "/api/v1/flows?" + flowsParams(st).toString(), id: "flow-json", target: "_blank" }, "JSON");
  m.replaceChildren(el("h2", {}, "Flows"),
    el("div", { class: "controls filterbar" }, filterIn, runBtn),
    el("div", { class: "controls" }, bySel, orderSel, rowsSel, srcSel, ranges, custom, el("span", { class: "export" }, apiLink)),
    out);
  setHash("flows", flowsParams(st), true);
  document.body.dataset.flowRows = "";
  const r = await fetch("/api/v1/flows?" + flowsParams(st).toString(), { headers: { Accept: "application/json" } });
  let data = null;
  try { data = await r.json(); } catch (e) { /* not JSON */ }
  if (!out.isConnected) return; // the page moved on
  if (!r.ok) {
    const msg = (data && data.error) || r.status + " " + r.statusText;
    const kids = [el("p", { class: "error", role: "alert", id: "flow-error" }, msg)];
    if (data && data.column) {
      // Point at the column, in the box and under a copy of the filter.
      kids.push(el("pre", { class: "caret" }, data.filter + "\n" + " ".repeat(Math.max(0, data.column - 1)) + "^"));
      filterIn.focus();
      filterIn.setSelectionRange(data.column - 1, Math.min(data.column, filterIn.value.length));
    }
    out.replaceChildren(...kids);
    document.body.dataset.flowRows = "error";
    return;
  }
  const addAndRun = term => { sync(); st.filter = addTerm(st.filter, term); run(); };
  const termLink = (text, term) => term ? el("a", { href: "#", class: "term", title: "add " + term + " to the filter", dataset: { term },
    onclick: e => { e.preventDefault(); addAndRun(term); } }, text) : text;
  const src = data.source === "files" ? "the flow archive" : "ClickHouse";
  const span = fmtTime(data.from) + " – " + fmtTime(data.to);
  if (data.flows !== undefined || st.list) {
    const flows = data.flows || [];
    const ep = (a, p, dir) => [termLink(a, dir + " host " + a), ":", termLink(String(p), dir + " port " + p)];
    const head = el("tr", {}, ["start", "end"].map(h => el("th", { class: "l" }, h)), el("th", { class: "l" }, "proto"), el("th", { class: "l" }, "source"),
      el("th", { class: "l" }, "destination"), ["packets", "bytes", "flags", "in", "out"].map(h => el("th", {}, h)), el("th", { class: "l" }, "exporter"));
    const rows = flows.map(f => el("tr", {}, el("td", { class: "l" }, f.start), el("td", { class: "l" }, f.end),
      el("td", { class: "l" }, termLink(String(f.proto), "proto " + f.proto)), el("td", { class: "l" }, ep(f.src_addr, f.src_port, "src")),
      el("td", { class: "l" }, ep(f.dst_addr, f.dst_port, "dst")), el("td", {}, f.packets), el("td", {}, si(f.bytes) + "B"),
      el("td", {}, "0x" + f.tcp_flags.toString(16)), el("td", {}, termLink(String(f.in_if), "in if " + f.in_if)),
      el("td", {}, termLink(String(f.out_if), "out if " + f.out_if)), el("td", { class: "l" }, termLink(f.exporter, "exporter " + f.exporter))));
    out.replaceChildren(el("p", { class: "note", id: "flow-summary" }, `${flows.length} flows${data.truncated ? " (the first; more match)" : ""} from ${src}, ${span}, in ${data.elapsed_ms} ms; click a value to add it to the filter.`),
      skippedNote(data),
      el("div", { class: "tablewrap" }, el("table", { id: "flow-table" }, el("thead", {}, head), el("tbody", {}, rows))));
    document.body.dataset.flowRows = String(flows.length);
    return;
  }
  const keys = data.by.map(k => k.split("/")[0]);
  const head = el("tr", {}, el("th", {}, "#"), data.by.map(k => el("th", { class: "l" }, k)),
    ["flows", "flows %", "packets", "packets %", "bytes", "bytes %", "bps", "pps"].map(h => el("th", {}, h)));
  const counters = c => [el("td", {}, c.flows), el("td", {}, pct(c.flows_pct)), el("td", {}, c.packets), el("td", {}, pct(c.packets_pct)),
    el("td", {}, si(c.bytes) + "B"), el("td", {}, pct(c.bytes_pct)), el("td", {}, si(c.bps) + "b/s"), el("td", {}, si(c.pps) + "p/s")];
  const keyCell = (row, k) => {
    const v = String(row[k]), name = row.names && row.names[k];
    return el("td", { class: "l", dataset: { key: k } }, termLink(name ? name + " (" + v + ")" : v, row.terms && row.terms[k]));
  };
  const rows = data.rows.map((row, i) => el("tr", {}, el("td", {}, i + 1), keys.map(k => keyCell(row, k)), counters(row)));
  const foot = [];
  if (data.other && data.other.flows > 0) foot.push(el("tr", { class: "other" }, el("td", {}, ""), el("td", { class: "l", colspan: keys.length }, "other"), counters(data.other)));
  if (data.total) foot.push(el("tr", { class: "total" }, el("td", {}, ""), el("td", { class: "l", colspan: keys.length }, "total"), counters(data.total)));
  out.replaceChildren(el("p", { class: "note", id: "flow-summary" }, `top ${data.rows.length} of ${data.groups} groups by ${data.order} from ${src}, ${span}, in ${data.elapsed_ms} ms; click a value to add it to the filter.`),
    skippedNote(data),
    el("div", { class: "tablewrap" }, el("table", { id: "flow-table" }, el("thead", {}, head), el("tbody", {}, rows), el("tfoot", {}, foot))));
  document.body.dataset.flowRows = String(data.rows.length);
}
