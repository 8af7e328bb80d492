// rnnkit view: the page. Plain JavaScript, no build step; uPlot draws the curves.
// Views are addressed by the URL's hash: #runs, #run/ID[/TAB], #experiment/ID.
"use strict";

const EXPORTED = (() => {
  const element = document.getElementById("exported");
  return element ? JSON.parse(element.textContent) : null;
})();
const POLL_MS = 2000;
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
let timers = [];
let charts = [];
let state = { runs: [], experiments: [], sort: { key: "shown", up: true }, filter: "", chosen: new Set(), axis: "step" };

// ---- talking to the server (or to the exported data) ---------------------------------------------------
async function api(path, body) {
  if (EXPORTED) return exportedAnswer(path, body);
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  let data;
  try { data = await response.json(); } catch (e) { throw new Error(`${response.status}: not JSON`); }
  if (!response.ok) throw new Error(data.error || `${response.status}`);
  return data;
}

function exportedAnswer(path, body) {
  const url = new URL(path, "http://page/");
  const id = url.searchParams.get("id");
  if (body !== undefined) throw new Error("this needs the server: run `rnnkit view` to compute with a model");
  switch (url.pathname) {
    case "/api/runs": return { runs: EXPORTED.runs, experiments: EXPORTED.experiments, problems: EXPORTED.problems, engine: "" };
    case "/api/run": return EXPORTED.details[id];
    case "/api/metrics": {
      const all = (EXPORTED.metrics[id] || { records: [] }).records;
      return { records: all.slice(Number(url.searchParams.get("since") || 0)), total: all.length };
    }
    case "/api/samples": return EXPORTED.samples[id] || { samples: [] };
    case "/api/experiment": return EXPORTED.experiment[id];
    case "/api/diff": {
      const a = flat(EXPORTED.details[url.searchParams.get("a")].config || {});
      const b = flat(EXPORTED.details[url.searchParams.get("b")].config || {});
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
      return { differences: keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map((k) => ({ key: k, a: a[k], b: b[k] })) };
    }
    default: throw new Error("this needs the server: run `rnnkit view`");
  }
}

function flat(record, prefix = "") {
  const out = {};
  for (const [key, value] of Object.entries(record)) {
    if (value && typeof value === "object" && !Array.isArray(value)) Object.assign(out, flat(value, `${prefix}${key}.`));
    else out[prefix + key] = value;
  }
  return out;
}

// ---- small helpers -------------------------------------------------------------------------------------
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function number(value, digits = 4) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return Number(value.toPrecision(digits)).toString();
}

function showError(where, error) {
  where.replaceChildren(el("p", { class: "error" }, String(error.message || error)));
}

function setStatus(text) { document.getElementById("status").textContent = text; }

function stopTimers() {
  timers.forEach(clearInterval);
  timers = [];
  charts.forEach((chart) => chart.destroy());
  charts = [];
}

function every(ms, action) { timers.push(setInterval(action, ms)); }

// Colours: a diverging scale for values around 0 (blue, white, red) and a sequential one for gates in [0, 1].
function colour(value, scale, gate) {
  if (value === null || value === undefined || Number.isNaN(value)) return "#eee";
  if (gate) {
    const v = Math.max(0, Math.min(1, value));
    const fade = Math.round(255 * (1 - v));
    return `rgb(255,${fade},${Math.round(fade * 0.9 + 25 * v)})`;
  }
  const v = Math.max(-1, Math.min(1, value / (scale || 1)));
  const fade = Math.round(255 * (1 - Math.abs(v)));
  return v >= 0 ? `rgb(255,${fade},${fade})` : `rgb(${fade},${fade},255)`;
}
const GATES = new Set(["i", "f", "o", "r", "z"]);

// ---- the runs page -------------------------------------------------------------------------------------
const COLUMNS = [
  ["shown", "run"], ["task", "task"], ["preset", "preset"], ["variant", "cell / variant"], ["parameters", "parameters"],
  ["steps", "steps"], ["epochs", "epochs"], ["best", "best metric"], ["state", "state"],
];

async function runsPage(main) {
  main.replaceChildren(el("p", { class: "note" }, "Reading the runs…"));
  const refresh = async () => {
    const data = await api("/api/runs");
    state.runs = data.runs;
    state.experiments = data.experiments;
    state.problems = data.problems;
    setStatus(`${data.runs.length} runs${data.engine ? ", engine " + data.engine : ""}${EXPORTED ? " (exported page)" : ""}`);
  };
  try { await refresh(); } catch (error) { return showError(main, error); }
  const table = el("div");
  const compare = el("div");
  const curves = el("div");
  const filter = el("input", { type: "search", placeholder: "filter: task, preset, cell, path…", value: state.filter, id: "filter", size: 40 });
  filter.addEventListener("input", () => { state.filter = filter.value; drawTable(); });
  const drawTable = () => {
    table.replaceChildren(runsTable());
    drawCompare();
  };
  const drawCompare = () => {
    const chosen = [...state.chosen].filter((id) => state.runs.some((run) => run.id === id));
    compare.replaceChildren();
    curves.replaceChildren();
    if (chosen.length === 2) {
      compare.append(el("h3", {}, "Config differences"));
      api(`/api/diff?a=${encodeURIComponent(chosen[0])}&b=${encodeURIComponent(chosen[1])}`)
        .then((data) => compare.append(diffTable(data.differences, chosen))).catch((error) => compare.append(el("p", { class: "error" }, error.message)));
    } else compare.append(el("p", { class: "note" }, "Tick two runs to see their config differences; tick any to overlay their curves."));
    if (chosen.length) drawCurves(curves, chosen);
  };
  state.redrawRuns = drawTable;
  const experiments = el("div");
  if (state.experiments.length) {
    experiments.append(el("h3", {}, "Experiments"), el("ul", {}, state.experiments.map((experiment) =>
      el("li", {}, el("a", { href: `#experiment/${encodeURIComponent(experiment.id)}` }, experiment.shown), ` (${experiment.runs.length} runs)`))));
  }
  const problems = (state.problems || []).map((problem) => el("p", { class: "problem" }, problem));
  main.replaceChildren(el("h2", {}, "Runs"), ...problems, el("div", { class: "controls" }, filter), table, compare, curves, experiments);
  drawTable();
  if (!EXPORTED) every(5000, async () => { try { await refresh(); table.replaceChildren(runsTable()); } catch (e) { setStatus(e.message); } });
}

function bestText(run) {
  const best = run.best || {};
  if (best.value === undefined || best.value === null) return best.metric ? `${best.metric}: —` : "—";
  return `${best.metric} ${number(best.value)}${best.step !== undefined ? " @" + best.step : ""}`;
}

function sortValue(run, key) {
  if (key === "best") return run.best && run.best.value !== undefined ? run.best.value : null;
  return run[key];
}

function runsTable() {
  const needle = state.filter.toLowerCase();
  let runs = state.runs.filter((run) => !needle || [run.shown, run.task, run.preset, run.variant, run.state].join(" ").toLowerCase().includes(needle));
  const { key, up } = state.sort;
  runs = runs.slice().sort((a, b) => {
    const x = sortValue(a, key), y = sortValue(b, key);
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * (up ? 1 : -1);
  });
  const head = el("tr", {}, el("th", {}, "✓"), COLUMNS.map(([name, title]) => el("th", {
    class: `sortable ${key === name ? (up ? "sorted-up" : "sorted-down") : ""}`, "data-key": name,
    onclick: () => { state.sort = { key: name, up: key === name ? !up : true }; state.redrawRuns(); },
  }, title)));
  const rows = runs.map((run) => el("tr", { "data-id": run.id },
    el("td", {}, el("input", { type: "checkbox", checked: state.chosen.has(run.id), onchange: (event) => {
      if (event.target.checked) state.chosen.add(run.id); else state.chosen.delete(run.id);
      state.redrawRuns();
    } })),
    el("td", {}, el("a", { href: `#run/${encodeURIComponent(run.id)}` }, run.shown), run.problems.length ? el("div", { class: "problem" }, run.problems.join("; ")) : null),
    el("td", {}, run.task || "—"), el("td", {}, run.preset || "—"), el("td", {}, run.variant || run.cell || "—"),
    el("td", { class: "number" }, number(run.parameters)), el("td", { class: "number" }, number(run.steps)),
    el("td", { class: "number" }, number(run.epochs, 3)), el("td", {}, bestText(run)),
    el("td", { class: `state-${(run.state || "").replace(" ", "-")}` }, run.state || "—", run.reason ? ` (${run.reason})` : "")));
  return el("table", { id: "runs-table" }, el("thead", {}, head), el("tbody", {}, rows));
}

function diffTable(differences, ids) {
  if (!differences.length) return el("p", {}, "The two configs are the same.");
  return el("table", { class: "diff" }, el("tr", {}, el("th", {}, "key"), el("th", {}, ids[0]), el("th", {}, ids[1])),
    differences.map((d) => el("tr", {}, el("td", {}, d.key), el("td", { class: "a" }, JSON.stringify(d.a)), el("td", { class: "b" }, JSON.stringify(d.b)))));
}

// ---- curves --------------------------------------------------------------------------------------------
// A run's records, kept and extended by polling (/api/metrics?since=N).
const records = {};

async function fetchRecords(id) {
  const known = records[id] || [];
  const data = await api(`/api/metrics?id=${encodeURIComponent(id)}&since=${known.length}`);
  if (data.total < known.length) records[id] = (await api(`/api/metrics?id=${encodeURIComponent(id)}&since=0`)).records;
  else records[id] = known.concat(data.records);
  return data.records.length > 0 || !known.length;
}

function curveSeries(list, axis, metric) {
  // Each quantity: [[x], [y]] from the records of one run; markers for skipped steps and rollbacks.
  const out = { loss: [[], []], val: [[], []], lr: [[], []], gradient_norm: [[], []], speed: [[], []], marks: [] };
  let lastStep = 0, unit = null;
  for (const record of list) {
    const x = axis === "step" ? (record.step !== undefined ? record.step : lastStep) : record.elapsed;
    if (record.step !== undefined) lastStep = record.step;
    if (record.event === "train") {
      out.loss[0].push(x); out.loss[1].push(record.loss);
      out.lr[0].push(x); out.lr[1].push(record.lr);
      out.gradient_norm[0].push(x); out.gradient_norm[1].push(record.gradient_norm);
      const speed = Object.keys(record).find((key) => key.endsWith("_per_second"));
      if (speed) { unit = speed; out.speed[0].push(x); out.speed[1].push(record[speed]); }
    } else if (record.event === "eval" && metric && typeof record[metric] === "number") {
      out.val[0].push(x); out.val[1].push(record[metric]);
    } else if (record.event === "skip") out.marks.push({ x, kind: "skip" });
    else if (record.event === "rollback") out.marks.push({ x, kind: "rollback" });
  }
  out.unit = unit;
  return out;
}

function merged(seriesList) {
  // uPlot wants one x array: the union of every run's x, with null where a run has no value.
  const xs = [...new Set(seriesList.flatMap(([x]) => x))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  return [xs, ...seriesList.map(([x, y]) => {
    const column = new Array(xs.length).fill(null);
    x.forEach((value, i) => { column[index.get(value)] = y[i]; });
    return column;
  })];
}

function marksPlugin(marks) {
  return {
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        for (const mark of marks) {
          const left = u.valToPos(mark.x, "x", true);
          if (!Number.isFinite(left)) continue;
          ctx.strokeStyle = mark.kind === "skip" ? "rgba(220,0,0,0.7)" : "rgba(128,0,160,0.9)";
          ctx.setLineDash(mark.kind === "skip" ? [4, 3] : [8, 3]);
          ctx.lineWidth = 1.5 * devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(left, u.bbox.top);
          ctx.lineTo(left, u.bbox.top + u.bbox.height);
          ctx.stroke();
        }
        ctx.restore();
      }],
    },
  };
}

async function drawCurves(where, ids) {
  const box = el("div", { class: "curves" });
  const axisChoice = el("select", { id: "axis", onchange: () => { state.axis = axisChoice.value; render(); } },
    el("option", { value: "step", selected: state.axis === "step" }, "against step"),
    el("option", { value: "time", selected: state.axis === "time" }, "against time (s)"));
  const legend = el("p", { class: "note" });
  const grid = el("div", { class: "charts" });
  box.append(el("h3", {}, "Curves"), el("div", { class: "controls" }, axisChoice, legend), grid);
  where.append(box);
  const metricOf = (id) => {
    const run = state.runs.find((r) => r.id === id) || state.run;
    return run && run.best ? run.best.metric : null;
  };
  const render = () => {
    charts.forEach((chart) => chart.destroy());
    charts = [];
    grid.replaceChildren();
    const perRun = ids.map((id) => curveSeries(records[id] || [], state.axis, metricOf(id)));
    const metric = metricOf(ids[0]) || "validation";
    const unit = perRun.map((s) => s.unit).find(Boolean) || "units_per_second";
    const quantities = [
      ["loss", "training loss"], ["val", `validation ${metric}`], ["lr", "learning rate"],
      ["gradient_norm", "gradient norm (before clipping)"], ["speed", unit.replace(/_/g, " ")],
    ];
    const marks = perRun.flatMap((s) => s.marks);
    const skips = marks.filter((m) => m.kind === "skip").length, rollbacks = marks.length - skips;
    legend.textContent = `${ids.length} run(s). Skipped steps: ${skips} (red dashes); rollbacks: ${rollbacks} (purple dashes).`;
    for (const [key, title] of quantities) {
      if (!perRun.some((s) => s[key][0].length)) continue;
      const data = merged(perRun.map((s) => s[key]));
      const width = Math.max(380, Math.min(640, (grid.clientWidth || 900) / 2 - 30));
      const options = {
        width, height: 220, title: undefined,
        scales: { x: { time: false } },
        series: [{ label: state.axis === "step" ? "step" : "seconds" }, ...ids.map((id, i) => ({
          label: ids.length > 1 ? id : title, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: true,
          points: { show: key === "val" },
        }))],
        axes: [{}, { size: 60 }],
        plugins: [marksPlugin(marks)],
      };
      const holder = el("div", { class: "chart", "data-quantity": key }, el("div", { class: "title" }, title));
      grid.append(holder);
      charts.push(new uPlot(options, data, holder));
    }
    if (!grid.children.length) grid.append(el("p", { class: "note" }, "No records yet: the curves appear with the first progress record."));
  };
  try {
    await Promise.all(ids.map((id) => fetchRecords(id)));
    render();
  } catch (error) { where.append(el("p", { class: "error" }, error.message)); }
  if (!EXPORTED) every(POLL_MS, async () => {
    try {
      const changed = await Promise.all(ids.map((id) => fetchRecords(id)));
      if (changed.some(Boolean)) render();
    } catch (error) { setStatus(error.message); }
  });
  return render;
}

// ---- one run -------------------------------------------------------------------------------------------
const TASK_TABS = {
  language_model: ["curves", "samples", "inside", "sampler", "eval", "config"],
  classifier: ["curves", "classify", "eval", "config"],
  tagger: ["curves", "tag", "eval", "config"],
  translation: ["curves", "eval", "config"],
};

async function runPage(main, id, tab) {
  main.replaceChildren(el("p", { class: "note" }, "Reading the run…"));
  let run;
  try { run = await api(`/api/run?id=${encodeURIComponent(id)}`); } catch (error) { return showError(main, error); }
  if (!run) return showError(main, new Error("no such run in this page"));
  state.run = run;
  const tabs = TASK_TABS[run.task] || ["curves", "config"];
  tab = tabs.includes(tab) ? tab : tabs[0];
  const body = el("div", { id: `tab-${tab}` });
  main.replaceChildren(
    el("h2", {}, run.shown),
    el("p", {}, `${run.task || "?"} · ${run.variant || run.cell || "?"}${run.layers ? ` · ${run.layers} layer(s) of ${run.hidden_size}` : ""} · ${number(run.parameters)} parameters · ${number(run.steps)} steps · `,
      el("span", { class: `state-${(run.state || "").replace(" ", "-")}`, id: "run-state" }, run.state || "?"), run.reason ? ` (${run.reason})` : "",
      ` · best ${bestText(run)}`, run.preset ? ` · preset ${run.preset}` : ""),
    ...(run.problems || []).map((problem) => el("p", { class: "problem" }, problem)),
    el("div", { class: "tabs" }, tabs.map((name) => el("a", { href: `#run/${encodeURIComponent(id)}/${name}`, class: name === tab ? "active" : "" }, name))),
    body);
  const views = { curves: () => drawCurves(body, [id]), samples: samplesView, inside: insideView, sampler: samplerView, classify: classifyView, tag: tagView, eval: evalView, config: configView };
  try { await views[tab](body, run); } catch (error) { showError(body, error); }
}

function configView(body, run) {
  body.append(run.config ? el("pre", {}, JSON.stringify(run.config, null, 1)) : el("p", { class: "problem" }, "config.json could not be read"));
  if (run.latest) body.append(el("p", {}, `latest checkpoint: ${run.latest.name} (step ${run.latest.step}); kept: ${run.checkpoints.join(", ")}`));
}

async function samplesView(body, run) {
  const list = el("div", { id: "samples" });
  body.append(list);
  const draw = async () => {
    const data = await api(`/api/samples?id=${encodeURIComponent(run.id)}`);
    if (!data.samples.length) return list.replaceChildren(el("p", { class: "note" }, "No samples.txt yet (samples are written every sample.every steps)."));
    list.replaceChildren(...data.samples.slice().reverse().flatMap((s) => [el("div", { class: "sample-step" }, `step ${s.step}`), el("pre", {}, s.text)]));
  };
  await draw();
  if (!EXPORTED && run.state === "training") every(5000, () => draw().catch((e) => setStatus(e.message)));
}

function samplerView(body, run) {
  const field = (name, value, attributes = {}) => el("label", {}, name, el("input", { id: `sample-${name}`, value, ...attributes }));
  const prime = el("input", { id: "sample-prime", value: run.config && run.config.sample ? run.config.sample.prime : "", size: 40, maxlength: 1000 });
  const output = el("pre", { id: "sample-output" }, "");
  const go = async () => {
    const read = (name) => { const v = document.getElementById(`sample-${name}`).value; return v === "" ? null : Number(v); };
    output.textContent = "sampling…";
    try {
      const data = await api("/api/sample", { id: run.id, prime: prime.value, length: read("length"), temperature: read("temperature"), top_k: read("top_k"), top_p: read("top_p"), seed: read("seed") });
      output.textContent = data.text;
    } catch (error) { output.textContent = ""; output.append(el("span", { class: "error" }, error.message)); }
  };
  body.append(el("div", { class: "controls" }, el("label", {}, "prime", prime), field("length", 300, { type: "number", min: 0, max: 2000 }),
    field("temperature", 0.8, { type: "number", step: 0.1, min: 0 }), field("top_k", "", { type: "number", min: 1, placeholder: "all" }),
    field("top_p", 1, { type: "number", step: 0.05, min: 0.01, max: 1 }), field("seed", 1, { type: "number" }),
    el("button", { id: "sample-go", onclick: go }, "Sample")), output);
}

// ---- inside a language model ---------------------------------------------------------------------------
function insideView(body, run) {
  const text = el("textarea", { id: "inside-text", maxlength: 1000, placeholder: "Type a text (up to 1,000 characters), or take the start of the validation text." });
  const layer = el("select", { id: "inside-layer" });
  const signal = el("select", { id: "inside-signal" });
  const unit = el("input", { id: "inside-unit", type: "number", min: 0, value: 0 });
  const scaleNote = el("span", { class: "note" });
  const canvas = el("canvas", { id: "heatmap" });
  const textView = el("div", { class: "text-heat", id: "inside-heat" });
  const next = el("div", { class: "next-tokens", id: "next-tokens" }, "Point at a character to see the next tokens the model expects there.");
  const threshold = el("input", { id: "pattern-threshold", type: "number", step: 0.05, value: 0.5 });
  const patternOut = el("div", { id: "pattern-result" });
  const message = el("p", { class: "note", id: "inside-message" });
  let current = null, selected = null;

  const load = async (keepLayer) => {
    message.textContent = "reading…";
    try {
      current = await api("/api/inside", { id: run.id, text: text.value, layer: keepLayer ? layer.value : null, signal: keepLayer ? signal.value : null });
    } catch (error) { message.textContent = ""; message.append(el("span", { class: "error" }, error.message)); return; }
    message.textContent = `${current.pieces.length} tokens · layer ${current.layer} · ${current.signal} · ${current.hidden_size} units. Select a span of the text, then Find units.`;
    layer.replaceChildren(...Object.keys(current.layers).map((key) => el("option", { value: key, selected: key === current.layer }, key)));
    signal.replaceChildren(...current.layers[current.layer].map((name) => el("option", { value: name, selected: name === current.signal }, name)));
    unit.max = current.hidden_size - 1;
    if (Number(unit.value) >= current.hidden_size) unit.value = 0;
    drawHeatmap();
    drawText();
  };
  const scaleOf = () => {
    let peak = 0;
    for (const row of current.values) for (const v of row) peak = Math.max(peak, Math.abs(v));
    return peak || 1;
  };
  const drawHeatmap = () => {
    const T = current.values.length, H = current.hidden_size, gate = GATES.has(current.signal), scale = scaleOf();
    const cell = Math.max(1, Math.min(6, Math.floor(1100 / T)));
    const rowHeight = Math.max(1, Math.min(4, Math.floor(400 / H)));
    canvas.width = T * cell; canvas.height = H * rowHeight;
    const ctx = canvas.getContext("2d");
    for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) {
      ctx.fillStyle = colour(current.values[t][h], scale, gate);
      ctx.fillRect(t * cell, h * rowHeight, cell, rowHeight);
    }
    const u = Number(unit.value);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 1;
    ctx.strokeRect(0.5, u * rowHeight - 0.5, T * cell - 1, rowHeight + 1);
    canvas.onclick = (event) => {
      const box = canvas.getBoundingClientRect();
      unit.value = Math.min(H - 1, Math.floor((event.clientY - box.top) * canvas.height / box.height / rowHeight));
      drawHeatmap(); drawText();
    };
    scaleNote.textContent = gate ? "colour: 0 white → 1 red" : `colour: −${number(scale, 3)} blue → 0 white → +${number(scale, 3)} red`;
  };
  const drawText = () => {
    const u = Number(unit.value), gate = GATES.has(current.signal);
    const scale = Math.max(...current.values.map((row) => Math.abs(row[u]))) || 1;  // the picked unit's own range
    textView.replaceChildren(...current.pieces.map((piece, t) => {
      const value = current.values[t][u];
      const span = el("span", { "data-index": t, title: `${t}: ${number(value, 3)}` }, piece === "\n" ? "↵\n" : piece);
      span.style.background = colour(value, scale, gate);
      span.addEventListener("mouseenter", () => showNext(t));
      return span;
    }));
    if (selected) markPlaces([], selected);
  };
  const showNext = (t) => {
    const shown = (token) => JSON.stringify(token === "\n" ? "↵" : token);
    next.replaceChildren(el("div", {}, `after ${JSON.stringify(current.pieces[t])} (position ${t}), unit ${unit.value}: ${number(current.values[t][Number(unit.value)], 3)}`),
      ...current.next[t].map(([token, p]) => el("div", {}, el("span", { class: "bar", style: `width:${Math.round(p * 200)}px` }), ` ${shown(token)} ${(p * 100).toFixed(1)}%`)));
  };
  const selectionSpan = () => {
    const chosen = window.getSelection();
    if (!chosen || chosen.isCollapsed) return null;
    const index = (node) => {
      const span = node && (node.nodeType === 1 ? node : node.parentElement);
      const hit = span && span.closest("[data-index]");
      return hit && textView.contains(hit) ? Number(hit.dataset.index) : null;
    };
    const a = index(chosen.anchorNode), b = index(chosen.focusNode);
    if (a === null || b === null) return null;
    return [Math.min(a, b), Math.max(a, b) + 1];
  };
  const markPlaces = (places, span) => {
    for (const node of textView.children) node.classList.remove("hit", "current");
    for (const place of places) for (let t = place.start; t < place.end; t++) textView.children[t] && textView.children[t].classList.add("hit");
    if (span) for (let t = span[0]; t < span[1]; t++) textView.children[t] && textView.children[t].classList.add("current");
  };
  let lastSelection = null;  // kept as it is made: pressing the button may clear the selection
  const remember = () => {
    if (!textView.isConnected) return document.removeEventListener("selectionchange", remember);
    const span = selectionSpan();
    if (span) lastSelection = span;
  };
  document.addEventListener("selectionchange", remember);
  const findUnits = async () => {
    const span = selectionSpan() || lastSelection || selected;
    if (!current) return;
    if (!span) { patternOut.replaceChildren(el("p", { class: "error" }, "Select a span of the coloured text first.")); return; }
    selected = span;
    try {
      const data = await api("/api/pattern", { id: run.id, text: text.value, layer: current.layer, signal: current.signal, start: span[0], end: span[1], threshold: Number(threshold.value) });
      markPlaces(data.places, span);
      patternOut.replaceChildren(
        el("p", {}, `Selected tokens ${span[0]}–${span[1] - 1}: ${JSON.stringify(current.pieces.slice(span[0], span[1]).join(""))}. ${data.units.length} unit(s) of ${data.layer} ${data.signal} are ≥ ${threshold.value} inside and below it around.`),
        el("div", { class: "units", id: "pattern-units" }, data.units.slice(0, 30).map((u) => el("a", { href: "#", "data-unit": u.unit, onclick: (event) => { event.preventDefault(); unit.value = u.unit; drawHeatmap(); drawText(); markPlaces(data.places, span); } }, `unit ${u.unit} (+${number(u.margin, 3)})`))),
        el("p", {}, data.searched.length ? `Where units ${data.searched.join(", ")} are all on together (${data.places.length} place(s), outlined in green):` : "No unit fits: lower the threshold or choose another span."),
        el("ul", { id: "pattern-places" }, data.places.slice(0, 20).map((p) => el("li", {}, `${p.start}–${p.end - 1}: ${JSON.stringify(p.text)}${p.selected ? " (the selection)" : ""}`))));
    } catch (error) { patternOut.replaceChildren(el("p", { class: "error" }, error.message)); }
  };
  const fromValidation = async (length = 1000) => {
    try { text.value = (await api(`/api/validation?id=${encodeURIComponent(run.id)}`)).text.slice(0, length); }
    catch (error) { message.textContent = error.message; text.value = (run.config && run.config.sample && run.config.sample.prime) || ""; }
    if (text.value.trim()) load(false);
  };
  layer.onchange = () => load(true);
  signal.onchange = () => load(true);
  unit.oninput = () => { if (current) { drawHeatmap(); drawText(); } };
  body.append(text,
    el("div", { class: "controls" }, el("button", { id: "inside-go", onclick: () => load(false) }, "Read the text"),
      el("button", { id: "inside-validation", onclick: () => fromValidation() }, "Take validation text"),
      el("label", {}, "layer", layer), el("label", {}, "signal", signal), el("label", {}, "unit", unit), scaleNote),
    message,
    el("h3", {}, "Every unit (rows) over the tokens (columns); click a row to pick its unit"), canvas,
    el("h3", {}, "The picked unit over the text"), textView, next,
    el("h3", {}, "Find units by pattern"),
    el("div", { class: "controls" }, el("label", {}, "on at ≥", threshold), el("button", { id: "pattern-go", onclick: findUnits }, "Find units for the selected span")),
    patternOut);
  fromValidation(300);
}

// ---- classifier and tagger -----------------------------------------------------------------------------
function classifyView(body, run) {
  const input = el("input", { id: "classify-text", size: 80, maxlength: 1000, value: "a gripping , beautifully acted film" });
  const out = el("div", { id: "classify-result" });
  const go = async () => {
    try {
      const data = await api("/api/classify", { id: run.id, text: input.value });
      const peak = Math.max(...data.contributions.map(Math.abs), 1e-9);
      out.replaceChildren(
        el("p", {}, "label: ", el("strong", { id: "classify-label" }, data.label)),
        el("table", {}, Object.entries(data.probabilities).map(([label, p]) => el("tr", {}, el("td", {}, label), el("td", {}, el("span", { class: "bar", style: `width:${Math.round(p * 300)}px` })), el("td", { class: "number" }, (p * 100).toFixed(1) + "%")))),
        el("h3", {}, "Each word's contribution"),
        el("div", { id: "contributions" }, data.words.map((word, i) => {
          const span = el("span", { class: "word", title: `${number(data.contributions[i], 3)}${data.unknown[i] ? " (not in the vocabulary)" : ""}` }, word);
          span.style.background = colour(data.contributions[i], peak, false);
          return span;
        })),
        el("p", { class: "note" }, `${data.method}. Red: the word supports the label; blue: it speaks against it.`));
    } catch (error) { showError(out, error); }
  };
  body.append(el("div", { class: "controls" }, input, el("button", { id: "classify-go", onclick: go }, "Classify")), out);
  go();
}

function tagView(body, run) {
  const input = el("input", { id: "tag-text", size: 80, maxlength: 1000, value: "The quick brown fox jumps over the lazy dog ." });
  const out = el("div", { id: "tag-result" });
  const go = async () => {
    try {
      const data = await api("/api/tag", { id: run.id, text: input.value });
      out.replaceChildren(el("table", {}, el("tr", {}, el("th", {}, "word"), el("th", {}, "tag"), el("th", {}, "p"), el("th", {}, "next likeliest")),
        data.words.map((word, i) => {
          const row = data.probabilities[i];
          const order = row.map((p, k) => [p, k]).sort((a, b) => b[0] - a[0]);
          const tagIndex = data.tag_set.indexOf(data.tags[i]);
          return el("tr", {}, el("td", {}, word, data.unknown[i] ? " *" : ""), el("td", { class: "tag" }, el("strong", {}, data.tags[i])),
            el("td", { class: "number" }, (row[tagIndex] * 100).toFixed(1) + "%"),
            el("td", {}, order.filter(([, k]) => k !== tagIndex).slice(0, 2).map(([p, k]) => `${data.tag_set[k]} ${(p * 100).toFixed(1)}%`).join(", ")));
        })),
        el("p", { class: "note" }, `${data.crf ? "Probabilities are the CRF's marginals p(tag at this word | sentence); the tags are its Viterbi path." : "Probabilities are the softmax of each word's scores."} * : not in the vocabulary.`));
    } catch (error) { showError(out, error); }
  };
  body.append(el("div", { class: "controls" }, input, el("button", { id: "tag-go", onclick: go }, "Tag")), out);
  go();
}

async function evalView(body, run) {
  const out = el("div", { id: "eval-result" });
  const go = async () => {
    out.replaceChildren(el("p", { class: "note" }, "evaluating on the run's validation data…"));
    try { drawEval(out, await api(`/api/eval?id=${encodeURIComponent(run.id)}`)); } catch (error) { showError(out, error); }
  };
  body.append(el("p", {}, el("button", { id: "eval-go", onclick: go }, "Evaluate the best checkpoint on the validation data"), " (what `rnnkit eval` prints)"), out);
}

function drawEval(out, metrics) {
  const plain = Object.entries(metrics).filter(([, v]) => typeof v !== "object" || v === null);
  out.replaceChildren(el("table", { id: "eval-metrics" }, plain.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: "number" }, number(v))))));
  if (metrics.confusion) {
    const { labels, matrix } = metrics.confusion;
    const peak = Math.max(...matrix.flat(), 1);
    out.append(el("h3", {}, "Confusion matrix (rows: true, columns: predicted)"), el("table", { id: "confusion" },
      el("tr", {}, el("th", {}, ""), labels.map((label) => el("th", {}, label))),
      matrix.map((row, i) => el("tr", {}, el("th", {}, labels[i]), row.map((n) => { const td = el("td", { class: "number" }, n); td.style.background = colour(n / peak, 1, true); return td; })))));
  }
  const perClass = metrics.per_class || metrics.per_tag;
  if (perClass) out.append(el("h3", {}, "Per class"), el("table", {}, el("tr", {}, ["", "precision", "recall", "F1", "support"].map((h) => el("th", {}, h))),
    Object.entries(perClass).map(([label, s]) => el("tr", {}, el("th", {}, label), [s.precision, s.recall, s.f1].map((v) => el("td", { class: "number" }, number(v, 3))), el("td", { class: "number" }, s.support)))));
  if (metrics.mistakes) out.append(el("h3", {}, "Mistakes"), el("table", { id: "mistakes" }, el("tr", {}, el("th", {}, "text"), el("th", {}, "true"), el("th", {}, "predicted")),
    metrics.mistakes.map((m) => el("tr", {}, el("td", {}, m.text), el("td", {}, m.label), el("td", {}, m.predicted)))));
  if (metrics.confusions) out.append(el("h3", {}, "Most frequent mistakes (gold → predicted)"), el("table", { id: "mistakes" },
    metrics.confusions.map((c) => el("tr", {}, el("td", {}, `${c.gold} → ${c.predicted}`), el("td", { class: "number" }, c.count)))));
}

// ---- experiments ---------------------------------------------------------------------------------------
function markdown(text) {
  // Enough Markdown for the experiments' reports: headings, tables, lists, paragraphs; everything escaped.
  const blocks = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length;) {
    const line = lines[i];
    if (/^#{1,6} /.test(line)) { blocks.push(el(`h${Math.min(6, line.indexOf(" ") + 1)}`, {}, line.replace(/^#+ /, ""))); i++; }
    else if (line.startsWith("|")) {
      const rows = [];
      while (i < lines.length && lines[i].startsWith("|")) { rows.push(lines[i]); i++; }
      const cells = (row) => row.replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
      const body = rows.filter((row, k) => !(k === 1 && /^[|\s:-]+$/.test(row)));
      blocks.push(el("table", {}, body.map((row, k) => el("tr", {}, cells(row).map((c) => el(k === 0 ? "th" : "td", {}, c))))));
    } else if (/^\s*[-*] /.test(line)) {
      const items = [];
      while (i < lines.length && /^\s*[-*] /.test(lines[i])) { items.push(lines[i].replace(/^\s*[-*] /, "")); i++; }
      blocks.push(el("ul", {}, items.map((item) => el("li", {}, item))));
    } else if (line.startsWith("```")) {
      const code = []; i++;
      while (i < lines.length && !lines[i].startsWith("```")) { code.push(lines[i]); i++; }
      i++; blocks.push(el("pre", {}, code.join("\n")));
    } else if (line.trim()) {
      const para = [];
      while (i < lines.length && lines[i].trim() && !/^(#|\||```|\s*[-*] )/.test(lines[i])) { para.push(lines[i]); i++; }
      blocks.push(el("p", {}, para.join(" ")));
    } else i++;
  }
  return blocks;
}

async function experimentPage(main, id) {
  let data;
  try { data = await api(`/api/experiment?id=${encodeURIComponent(id)}`); } catch (error) { return showError(main, error); }
  if (!data) return showError(main, new Error("no such experiment in this page"));
  main.replaceChildren(el("h2", {}, `Experiment: ${data.shown}`),
    ...data.problems.map((p) => el("p", { class: "problem" }, p)),
    el("div", { class: "report", id: "report" }, data.report ? markdown(data.report) : el("p", { class: "note" }, "no report.md")),
    el("div", { class: "plots" }, data.plots.filter(Boolean).map((src) => el("img", { src, alt: src.split("/").pop() }))),
    el("h3", {}, "Runs"), el("ul", {}, data.runs.map((run) => el("li", {}, el("a", { href: `#run/${encodeURIComponent(run)}` }, run)))),
    el("h3", {}, "results.json"), el("pre", { id: "results" }, data.results ? JSON.stringify(data.results, null, 1) : "none"));
}

// ---- routing -------------------------------------------------------------------------------------------
async function route() {
  stopTimers();
  const main = document.getElementById("main");
  const [view, rawId, tab] = location.hash.replace(/^#/, "").split("/");  // ids hold "/" only as %2F
  const id = rawId ? decodeURIComponent(rawId) : null;
  const crumbs = document.getElementById("crumbs");
  crumbs.replaceChildren(el("a", { href: "#runs" }, "runs"));
  if (view === "run" && id) { crumbs.append(" / ", id); return runPage(main, id, tab); }
  if (view === "experiment" && id) { crumbs.append(" / ", id); return experimentPage(main, id); }
  return runsPage(main);
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", route);
