// The playground page: controls → a request in the CLI's vocabulary → POST /api/compare →
// the adamlab compare --json document → views. The page computes nothing of its own: every
// number it shows is a number of that document (or, in the loss chart, f(x_t) − f*).

import * as api from "./api.js";
import { fmt, fmtVector, exact, specText } from "./format.js";
import { PathView } from "./path-view.js";
import { lineChart, emptyChart, fitWidth } from "./charts.js";

// matplotlib's C0…C9: the same colour per optimizer as adamlab.plot's figures
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];
const FLOOR = 1e-16; // as adamlab.lab.metrics.FLOOR: an exact 0 on a log axis
const FUNCTION = "__function__";

// slider ladders: nice values for the hyperparameters students move most
const LADDERS = {
  lr: [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
  beta: [0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999],
  eps: [0, 1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-3, 0.01, 0.1, 1],
  momentum: [0, 0.5, 0.8, 0.9, 0.95, 0.99],
  weight_decay: [0, 1e-4, 1e-3, 0.01, 0.1],
};
const LADDER_FOR = { lr: "lr", betas: "beta", alpha: "beta", eps: "eps", momentum: "momentum",
  weight_decay: "weight_decay", dampening: "beta" };

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

const state = {
  problem: "quadratic", fn: null, start: "", opts: [], steps: 50, seed: 0, repeats: 1,
  t: null, diag: null, coord: 0,
};
const catalog = { problems: [], byName: {}, optimizers: {}, schedules: [], limits: {}, seed: null };
let doc = null;
let runs = []; // the first seed's trajectory of each optimizer, in order
let cards = [];
let charts = { loss: null, m: null, v: null, bias: null, step: null };
let pathView = null;
let seq = 0;
let controller = null;
let runTimer = null;
let playing = null;

// ------------------------------------------------------------------------------------------
// the URL holds the whole configuration, in the CLI's words
// ------------------------------------------------------------------------------------------

function encode(v) {
  return encodeURIComponent(v).replace(/%(3A|2C|2F|3D)/gi, (m) => decodeURIComponent(m));
}

function writeURL() {
  const q = [];
  if (state.fn !== null) q.push(["function", state.fn]);
  else q.push(["problem", state.problem]);
  if (state.start.trim()) q.push(["start", state.start.trim()]);
  for (const o of state.opts) q.push(["opt", o]);
  q.push(["steps", state.steps]);
  if (state.seed !== 0) q.push(["seed", state.seed]);
  if (state.repeats !== 1) q.push(["repeats", state.repeats]);
  if (state.t !== null) q.push(["t", state.t]);
  if (state.diag !== null) q.push(["diag", state.diag]);
  if (state.coord !== 0) q.push(["coord", state.coord]);
  const url = `${location.pathname}?${q.map(([k, v]) => `${k}=${encode(String(v))}`).join("&")}`;
  history.replaceState(null, "", url);
}

function wholeNumber(text, fallback) {
  return /^\d+$/.test(text || "") ? parseInt(text, 10) : fallback;
}

function readURL() {
  const q = new URLSearchParams(location.search);
  const seedDemo = catalog.seed;
  state.fn = q.has("function") ? q.get("function") : null;
  state.problem = q.get("problem") || seedDemo.problem;
  state.start = q.get("start") || "";
  state.opts = q.getAll("opt").filter((o) => o.trim());
  if (!state.opts.length) state.opts = [...seedDemo.opt];
  state.steps = wholeNumber(q.get("steps"), seedDemo.steps);
  state.seed = wholeNumber(q.get("seed"), 0);
  state.repeats = wholeNumber(q.get("repeats"), 1);
  state.t = q.has("t") ? wholeNumber(q.get("t"), null) : null;
  state.diag = q.has("diag") ? wholeNumber(q.get("diag"), null) : null;
  state.coord = wholeNumber(q.get("coord"), 0);
}

// ------------------------------------------------------------------------------------------
// errors next to the field that caused them, in the library's words
// ------------------------------------------------------------------------------------------

function clearErrors() {
  for (const el of $$("[data-error-for]")) el.textContent = "";
  for (const el of $$("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

function showError(field, key, message) {
  const slot = (field && key && $(`[data-error-for="${field}.${key}"]`))
    || (field && $(`[data-error-for="${field}"]`))
    || (field && field.startsWith("opt") && $('[data-error-for="opt"]'))
    || $('[data-error-for="request"]');
  slot.textContent = message;
  const input = field && key ? $(`[data-field="${field}"] [data-key="${key}"]`) : null;
  const own = field ? $(`[data-input-for="${field}"]`) : null;
  for (const el of [input, own]) if (el) el.setAttribute("aria-invalid", "true");
}

// ------------------------------------------------------------------------------------------
// the request
// ------------------------------------------------------------------------------------------

function parseStart(text) {
  if (!text.trim()) return null;
  const parts = text.split(",").map((p) => p.trim());
  const values = parts.map((p) => (p === "" ? NaN : Number(p)));
  const bad = parts.find((p, i) => !Number.isFinite(values[i]));
  if (bad !== undefined) throw new api.ApiError(400, { error: `start: ${JSON.stringify(bad)} is not a number (give comma-separated coordinates, e.g. -1.2, 1)`, field: "start" });
  return values;
}

function request() {
  const r = { opt: [...state.opts], steps: state.steps, seed: state.seed, repeats: state.repeats };
  if (state.fn !== null) r.function = state.fn;
  else r.problem = state.problem;
  const start = parseStart(state.start);
  if (start) r.start = start;
  return r;
}

function scheduleRun(delay = 60) {
  clearTimeout(runTimer);
  runTimer = setTimeout(run, delay);
}

async function run() {
  clearTimeout(runTimer);
  writeURL();
  const my = ++seq;
  if (controller) controller.abort();
  controller = new AbortController();
  document.body.dataset.state = "busy";
  try {
    const req = request();
    const { doc: fresh, timing } = await api.compare(req, controller.signal);
    if (my !== seq) return;
    clearErrors();
    doc = fresh;
    render(timing);
    document.body.dataset.runs = String(Number(document.body.dataset.runs) + 1);
    document.body.dataset.state = "ready";
  } catch (e) {
    if (e.name === "AbortError" || my !== seq) return;
    clearErrors();
    if (e instanceof api.ApiError) showError(e.field, e.key, e.message);
    else showError(null, null, `the server did not answer: ${e.message}`);
    $("#status").textContent = "not run: see the message next to the field";
    document.body.dataset.state = "error";
  }
}

// ------------------------------------------------------------------------------------------
// the problem controls
// ------------------------------------------------------------------------------------------

const GROUPS = [
  ["1-d", "the seed demo and 1-D"],
  ["surface", "2-D surfaces"],
  ["noisy", "noisy"],
  ["online", "Reddi, Kale & Kumar's counterexamples"],
  ["large", "too large to draw (run them with adamlab compare)"],
];

function buildProblemSelect() {
  const select = $("#problem");
  for (const [group, title] of GROUPS) {
    const og = document.createElement("optgroup");
    og.label = title;
    for (const p of catalog.problems.filter((q) => q.group === group)) {
      const o = new Option(`${p.name}${p.dim > 2 ? ` (${p.dim}-D)` : ""}`, p.name);
      o.disabled = !p.playground;
      og.append(o);
    }
    select.append(og);
  }
  const own = document.createElement("optgroup");
  own.label = "your own";
  own.append(new Option("f(x, y) = … (an expression)", FUNCTION));
  select.append(own);
}

function splitProblem(spec) {
  const i = spec.indexOf(":");
  return i < 0 ? [spec.trim(), ""] : [spec.slice(0, i).trim(), spec.slice(i + 1).trim()];
}

function syncProblemControls() {
  const [name, params] = splitProblem(state.problem);
  const isFn = state.fn !== null;
  $("#problem").value = isFn ? FUNCTION : name;
  $("#function-label").hidden = !isFn;
  $("#params-label").hidden = isFn;
  $("#function").value = isFn ? state.fn : "";
  $("#problem-params").value = params;
  const p = catalog.byName[name];
  const hint = p && p.parameters.length
    ? p.parameters.map((q) => `${q.name}=${q.default === null ? "…" : specText(q.default)}`).join(",")
    : "(none)";
  $("#problem-params").placeholder = hint;
  $("#problem-params").disabled = !p || !p.parameters.length;
  $("#start").value = state.start;
  $("#steps").value = state.steps;
  $("#seed").value = state.seed;
  $("#repeats").value = state.repeats;
}

function problemSpec() {
  const name = $("#problem").value;
  const params = $("#problem-params").value.trim();
  return params ? `${name}:${params}` : name;
}

function wireProblemControls() {
  $("#problem").addEventListener("change", () => {
    const value = $("#problem").value;
    if (value === FUNCTION) {
      state.fn = state.fn ?? "(x-2)**2 + 3*sin(x)";
    } else {
      state.fn = null;
      state.problem = value;
    }
    state.start = "";
    state.t = null;
    state.coord = 0;
    syncProblemControls();
    run();
  });
  $("#problem-params").addEventListener("change", () => {
    state.problem = problemSpec();
    run();
  });
  $("#function").addEventListener("change", () => {
    state.fn = $("#function").value;
    state.start = "";
    run();
  });
  $("#start").addEventListener("change", () => {
    state.start = $("#start").value;
    run();
  });
  for (const key of ["steps", "seed", "repeats"]) {
    $(`#${key}`).addEventListener("change", () => {
      const v = Number($(`#${key}`).value);
      state[key] = Number.isInteger(v) ? v : $(`#${key}`).value;
      if (key === "steps") state.t = null;
      run();
    });
  }
  $("#problem").dataset.inputFor = "problem";
  $("#problem-params").dataset.inputFor = "problem";
  $("#function").dataset.inputFor = "function";
  $("#start").dataset.inputFor = "start";
  for (const key of ["steps", "seed", "repeats"]) $(`#${key}`).dataset.inputFor = key;
}

// ------------------------------------------------------------------------------------------
// optimizer cards: fields from the catalog, values from the library (describe())
// ------------------------------------------------------------------------------------------

function optName(spec) {
  return spec.split(":")[0].trim().toLowerCase();
}

function nearestIndex(ladder, value) {
  let best = 0;
  ladder.forEach((v, i) => {
    if (Math.abs(v - value) < Math.abs(ladder[best] - value)) best = i;
  });
  return best;
}

class Card {
  constructor(index) {
    this.index = index;
    this.el = document.createElement("article");
    this.el.className = "card";
    this.name = null;
  }

  get field() {
    return `opt[${this.index}]`;
  }

  build(spec) {
    const name = optName(spec);
    const info = catalog.optimizers[name];
    this.name = name;
    this.info = info;
    this.el.dataset.field = this.field;
    this.el.dataset.optimizer = name;
    const head = document.createElement("header");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = COLORS[this.index % COLORS.length];
    const type = document.createElement("select");
    type.className = "opt-type";
    type.setAttribute("aria-label", "optimizer");
    for (const n of Object.keys(catalog.optimizers)) type.append(new Option(catalog.optimizers[n].class, n));
    if (!info) type.append(new Option(name || "?", name));
    type.value = name;
    type.addEventListener("change", () => {
      const lr = this.input("lr");
      this.setSpec(`${type.value}${lr && lr.value.trim() ? `:lr=${lr.value.trim()}` : ""}`, true);
    });
    const label = document.createElement("span");
    label.className = "card-label";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "✕";
    remove.title = "remove this optimizer";
    remove.addEventListener("click", () => removeOptimizer(this.index));
    head.append(swatch, type, label, remove);

    const specRow = document.createElement("label");
    specRow.className = "spec";
    specRow.textContent = "--opt ";
    const specInput = document.createElement("input");
    specInput.type = "text";
    specInput.className = "spec-input";
    specInput.spellcheck = false;
    specInput.value = spec;
    specInput.dataset.inputFor = this.field;
    specInput.addEventListener("change", () => this.setSpec(specInput.value.trim(), true));
    specRow.append(specInput);

    const grid = document.createElement("div");
    grid.className = "hypers";
    for (const h of info ? info.hyperparameters : []) grid.append(this.fieldFor(h));
    const error = document.createElement("p");
    error.className = "error";
    error.dataset.errorFor = this.field;
    this.el.replaceChildren(head, specRow, grid, error);
    this.spec = spec;
  }

  fieldFor(h) {
    const row = document.createElement("div");
    row.className = `hyper kind-${h.kind}`;
    const title = document.createElement("label");
    title.className = "hyper-name";
    title.textContent = h.name;
    title.title = h.help || "";
    if (h.range) title.dataset.range = h.range.text;
    const box = document.createElement("div");
    box.className = "hyper-input";
    const commit = () => this.fromFields();
    const slider = (input, ladderName) => {
      const ladder = LADDERS[ladderName];
      const r = document.createElement("input");
      r.type = "range";
      r.min = 0;
      r.max = ladder.length - 1;
      r.step = 1;
      r.tabIndex = -1;
      r.setAttribute("aria-label", `${h.name} (slider)`);
      r.addEventListener("input", () => {
        input.value = specText(ladder[Number(r.value)]);
        this.fromFields(120);
      });
      input.addEventListener("input", () => {
        const v = Number(input.value);
        if (input.value.trim() && Number.isFinite(v)) r.value = nearestIndex(ladder, v);
      });
      input.slider = r;
      return r;
    };
    if (h.kind === "number" || h.kind === "pair") {
      const parts = h.kind === "pair" ? [0, 1] : [null];
      for (const part of parts) {
        const input = document.createElement("input");
        input.type = "text";
        input.spellcheck = false;
        input.dataset.key = h.name;
        if (part !== null) {
          input.dataset.part = String(part);
          input.setAttribute("aria-label", `${h.name}[${part}]`);
          input.placeholder = specText(h.default[part]);
        } else {
          input.setAttribute("aria-label", h.name);
          input.placeholder = specText(h.default);
        }
        input.addEventListener("change", commit);
        const wrap = document.createElement("span");
        wrap.className = "number";
        if (part !== null) {
          const sub = document.createElement("span");
          sub.className = "sub";
          sub.textContent = h.name === "betas" ? ["β₁", "β₂"][part] : `[${part}]`;
          wrap.append(sub);
        }
        wrap.append(input);
        const ladder = LADDER_FOR[h.name];
        if (ladder) wrap.append(slider(input, ladder));
        if (h.name === "lr" && h.dynamic && catalog.schedules.length) {
          wrap.append(this.scheduleMenu(input));
        }
        box.append(wrap);
      }
    } else if (h.kind === "flag") {
      const input = document.createElement("input");
      input.type = "checkbox";
      input.dataset.key = h.name;
      input.setAttribute("aria-label", h.name);
      input.addEventListener("change", commit);
      box.append(input);
    } else {
      const select = document.createElement("select");
      select.dataset.key = h.name;
      select.setAttribute("aria-label", h.name);
      const options = h.kind === "flag-pair"
        ? [["true/true", "on (Algorithm 1)"], ["false/false", "off"],
          ["false/true", "AdamD: v̂ only"], ["true/false", "m̂ only"]]
        : h.choices.map((c) => [c, c]);
      for (const [value, text] of options) select.append(new Option(text, value));
      select.addEventListener("change", commit);
      box.append(select);
    }
    const error = document.createElement("p");
    error.className = "error";
    error.dataset.errorFor = `${this.field}.${h.name}`;
    row.append(title, box, error);
    return row;
  }

  scheduleMenu(input) {
    const menu = document.createElement("select");
    menu.className = "schedule";
    menu.setAttribute("aria-label", "lr schedule");
    menu.append(new Option("constant", ""));
    for (const s of catalog.schedules) {
      if (s.name !== "constant") menu.append(new Option(s.name, s.name));
    }
    menu.addEventListener("change", () => {
      const base = Number(input.value) || Number(input.placeholder) || 0.001;
      const n = state.steps;
      const text = {
        "": specText(base),
        inverse_sqrt: `inverse_sqrt(${base})`,
        cosine: `cosine(${base}, total_steps=${n})`,
        step_decay: `step_decay(${base}, step_size=${Math.max(1, Math.round(n / 4))})`,
        exponential_decay: `exponential_decay(${base}, gamma=0.99)`,
        linear_warmup: `linear_warmup(${base}, warmup_steps=${Math.max(1, Math.round(n / 10))})`,
      }[menu.value];
      input.value = text ?? `${menu.value}(${base})`;
      this.fromFields();
    });
    input.scheduleMenu = menu;
    return menu;
  }

  input(key, part = null) {
    const sel = part === null ? `[data-key="${key}"]` : `[data-key="${key}"][data-part="${part}"]`;
    return $(sel, this.el);
  }

  // the library's reading of the spec (describe()), into the fields
  fill(values, label) {
    $(".card-label", this.el).textContent = label || "";
    if (!this.info) return;
    for (const h of this.info.hyperparameters) {
      const v = values[h.name];
      if (v === undefined) continue;
      if (h.kind === "pair") {
        [0, 1].forEach((part) => this.setText(this.input(h.name, part), specText(v[part])));
      } else if (h.kind === "flag") {
        const el = this.input(h.name);
        if (el !== document.activeElement) el.checked = Boolean(v);
      } else if (h.kind === "flag-pair" || h.kind === "choice") {
        const el = this.input(h.name);
        if (el !== document.activeElement) el.value = specText(v);
      } else {
        this.setText(this.input(h.name), specText(v));
      }
    }
  }

  setText(input, text) {
    if (!input || input === document.activeElement) return;
    input.value = text;
    const number = Number(text);
    if (input.slider && Number.isFinite(number)) {
      input.slider.value = nearestIndex(LADDERS[LADDER_FOR[input.dataset.key]], number);
    }
    input.slider?.toggleAttribute("disabled", !Number.isFinite(number));
    input.classList.toggle("wide", !Number.isFinite(number)); // a schedule, e.g. cosine(…)
    if (input.scheduleMenu) {
      const m = text.match(/^(\w+)\(/);
      input.scheduleMenu.value = m ? m[1] : "";
    }
  }

  // the spec the fields say: every value that is not the default (lr always)
  fromFields(delay = 0) {
    const parts = [];
    for (const h of this.info.hyperparameters) {
      let text;
      if (h.kind === "pair") {
        const a = this.input(h.name, 0).value.trim() || specText(h.default[0]);
        const b = this.input(h.name, 1).value.trim() || specText(h.default[1]);
        text = `${a}/${b}`;
      } else if (h.kind === "flag") {
        text = this.input(h.name).checked ? "true" : "false";
      } else {
        text = this.input(h.name).value.trim();
      }
      if (text === "") continue;
      if (h.name === "lr" || text !== specText(h.default)) parts.push(`${h.name}=${text}`);
    }
    this.setSpec(parts.length ? `${this.name}:${parts.join(",")}` : this.name, false, delay);
  }

  setSpec(spec, rebuild, delay = 0) {
    state.opts[this.index] = spec;
    if (rebuild && optName(spec) !== this.name) this.build(spec);
    $(".spec-input", this.el).value = spec;
    this.spec = spec;
    if (delay) scheduleRun(delay);
    else run();
  }
}

function renderCards() {
  const box = $("#cards");
  cards = state.opts.map((spec, i) => {
    const card = new Card(i);
    card.build(spec);
    return card;
  });
  box.replaceChildren(...cards.map((c) => c.el));
  const full = state.opts.length >= catalog.limits.optimizers;
  $("#add-opt").disabled = full;
  $("#add-opt").title = full ? `at most ${catalog.limits.optimizers} optimizers side by side` : "";
  for (const c of cards) $(".remove", c.el).disabled = state.opts.length === 1;
}

function addOptimizer() {
  if (state.opts.length >= catalog.limits.optimizers) return;
  state.opts.push(state.opts[state.opts.length - 1] || "adam:lr=0.1");
  renderCards();
  run();
}

function removeOptimizer(i) {
  if (state.opts.length <= 1) return;
  state.opts.splice(i, 1);
  state.diag = null;
  renderCards();
  run();
}

// ------------------------------------------------------------------------------------------
// views
// ------------------------------------------------------------------------------------------

function lastStep() {
  return Math.max(0, ...doc.trajectories.map((t) => t.loss.length - 1));
}

function currentStep() {
  const T = lastStep();
  return state.t === null ? T : Math.min(state.t, T);
}

function column(values, j) {
  return values.map((row) => (Array.isArray(row) ? row[j] : row));
}

function render(timing) {
  const labels = doc.optimizers.map((o) => o.label);
  runs = labels.map((lb) => doc.trajectories.find((t) => t.label === lb));
  const colors = labels.map((_, i) => COLORS[i % COLORS.length]);
  const T = lastStep();

  // cards: the library's reading of each spec
  if (cards.length !== state.opts.length) renderCards();
  doc.optimizers.forEach((o, i) => cards[i] && cards[i].fill(o.hyperparameters, o.label));

  // problem line
  const p = doc.problem;
  $("#problem-description").textContent = `${p.description} · dimension ${p.dim} · start ${fmtVector(doc.start)}`
    + (p.x_star ? ` · x* = ${fmtVector(p.x_star)}` : "") + (p.f_star !== null ? `, f* = ${fmt(p.f_star)}` : "");
  $("#start").placeholder = doc.start.map((v) => exact(v)).join(", ");

  // scrubber
  const range = $("#step-range");
  range.max = String(T);
  range.value = String(currentStep());

  pathView.setData(doc, runs, colors);
  $("#path-caption").textContent = p.dim === 1
    ? "the paths (xₜ, f(xₜ)) over the loss curve; x* is the star. Hover for exact values, click to start there."
    : p.dim === 2
      ? "the paths over log-spaced level bands of f; the white dot is the start, the star x*. Click to start there."
      : "";

  renderLossChart(colors);
  renderTable(colors);
  renderDiagnosticsControls();
  renderDiagnostics();
  setStep(currentStep(), false);

  $("#cli-command").textContent = shellJoin(doc.meta.command);
  $("#cli-table").textContent = doc.meta.table;
  $("#steps-to-head").textContent = `steps to ${doc.meta.criterion}`;
  const ms = timing && timing.compute !== undefined ? `${fmt(+timing.compute.toFixed(1))} ms` : "?";
  $("#status").textContent = `computed by adamlab ${doc.meta.versions.adamlab} in ${ms} on the server`
    + ` · ${labels.length} optimizer${labels.length > 1 ? "s" : ""} × ${doc.steps} steps`
    + (doc.seeds.length > 1 ? ` × ${doc.seeds.length} seeds` : "");
  $("#status").dataset.compute = timing ? String(timing.compute) : "";
}

function shellJoin(argv) {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(" ");
}

function renderLossChart(colors) {
  const fstar = doc.problem.f_star;
  const T = lastStep();
  const steps = Array.from({ length: T + 1 }, (_, i) => i);
  const labels = doc.optimizers.map((o) => o.label);
  const series = doc.trajectories.map((t) => {
    const i = labels.indexOf(t.label);
    const gap = t.loss.map((f) => (fstar === null ? f : f - fstar));
    const padded = steps.map((s) => (s < gap.length ? gap[s] : NaN));
    return {
      label: doc.seeds.length > 1 ? `${t.label} · seed ${t.seed}` : t.label,
      color: colors[i],
      width: t.seed === doc.seeds[0] ? 1.8 : 0.8,
      values: padded.map((v) => (fstar !== null && v <= 0 ? FLOOR : v)),
      shown: padded,
    };
  });
  const yLabel = fstar === null ? "f(xₜ)" : "f(xₜ) − f*";
  charts.loss = lineChart($("#loss-chart"), { series, steps, yLabel, getStep: currentStep, height: 330 });
  $("#loss-caption").textContent = `${yLabel} against the step${charts.loss.adamlabLog ? " (log scale)" : ""}; hover for exact values`
    + (fstar !== null ? "; an exact 0 is drawn at 1e-16" : "");
}

// one row per run; the x_t and f(x_t) cells are filled by setStep (renderTableAt)
function renderTable(colors) {
  const body = $("#results tbody");
  body.replaceChildren(...doc.trajectories.map((traj, k) => {
    const m = doc.metrics[k];
    const i = doc.optimizers.findIndex((o) => o.label === traj.label);
    const tr = document.createElement("tr");
    tr.dataset.label = traj.label;
    tr.dataset.seed = String(traj.seed);
    tr.dataset.index = String(i);
    const cell = (col, text, value) => {
      const td = document.createElement("td");
      td.dataset.col = col;
      td.textContent = text;
      if (value !== undefined) {
        td.dataset.value = value;
        td.title = value;
      }
      return td;
    };
    const name = cell("label", "");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = colors[i];
    name.append(sw, document.createTextNode(doc.seeds.length > 1 ? `${traj.label} · seed ${traj.seed}` : traj.label));
    let reached = m.steps_to_tol === null ? "never" : String(m.steps_to_tol);
    if (m.diverged_at !== null) reached += ` (diverged at step ${m.diverged_at})`;
    tr.append(
      name,
      cell("final-x", fmtVector(m.final_x), m.final_x.map(exact).join(",")),
      cell("final-loss", fmt(m.final_loss), exact(m.final_loss)),
      cell("steps-to", reached, m.steps_to_tol === null ? "" : String(m.steps_to_tol)),
      cell("x-at-t", ""),
      cell("f-at-t", ""),
    );
    return tr;
  }));
}

function renderDiagnosticsControls() {
  const select = $("#diag-opt");
  const labels = runs.map((r) => r.label);
  select.replaceChildren(...labels.map((lb, i) => new Option(lb, String(i))));
  let i = state.diag;
  if (i === null || i >= runs.length) {
    i = runs.findIndex((r) => "m_hat" in r.diagnostics); // as adamlab.plot.pick_trajectory
    if (i < 0) i = 0;
  }
  select.value = String(i);
  const coords = doc.tracked;
  $("#diag-coord").replaceChildren(...coords.map((c) => new Option(String(c), String(c))));
  if (!coords.includes(state.coord)) state.coord = coords[0];
  $("#diag-coord").value = String(state.coord);
  $("#coord-label").hidden = doc.problem.dim === 1;
}

function diagRun() {
  return runs[Number($("#diag-opt").value)] || runs[0];
}

function renderDiagnostics() {
  const run = diagRun();
  const j = doc.tracked.indexOf(state.coord);
  const d = run.diagnostics;
  const steps = run.loss.map((_, i) => i);
  const sub = doc.problem.dim > 1 ? `[${state.coord}]` : "";
  const col = (name) => column(d[name], j);
  const name = run.optimizer.name;
  const chart = (key, el, series, yLabel, missing) => {
    if (series === null) {
      charts[key] = emptyChart(el, run.loss.length < 2 ? "no step taken" : `${name} has no ${missing}`);
      return;
    }
    charts[key] = lineChart(el, { series, steps, yLabel, getStep: currentStep, height: 200 });
  };
  chart("m", $("#diag-m"), "m" in d && "m_hat" in d ? [
    { label: `m${sub} (raw)`, color: COLORS[0], values: col("m"), dash: [5, 4] },
    { label: `m̂${sub} = m/(1−β₁ᵗ)`, color: COLORS[3], values: col("m_hat") },
  ] : null, "m", "first moment");
  chart("v", $("#diag-v"), "v" in d && "v_hat" in d ? [
    { label: `v${sub} (raw)`, color: COLORS[0], values: col("v"), dash: [5, 4] },
    { label: `v̂${sub} = v/(1−β₂ᵗ)`, color: COLORS[3], values: col("v_hat") },
  ] : null, "v", "second moment");
  const bias = [];
  if ("bias1" in d) bias.push({ label: "1 − β₁ᵗ", color: COLORS[2], values: d.bias1 });
  if ("bias2" in d) bias.push({ label: "1 − β₂ᵗ", color: COLORS[4], values: d.bias2 });
  chart("bias", $("#diag-bias"), bias.length ? bias : null, "factor", "bias correction");
  const taken = column(run.step, j).map((v) => Math.abs(v));
  const stepSeries = [{ label: `|Δx${sub}| taken`, color: COLORS[0], values: taken }];
  if ("effective_lr" in d) {
    stepSeries.unshift({
      label: "v_hat" in d ? `α/(√v̂+ε)${sub}` : `effective lr${sub}`, color: COLORS[1], values: col("effective_lr"),
    });
  }
  chart("step", $("#diag-step"), stepSeries, "step size", "");
}

function renderReadout(t) {
  const run = diagRun();
  const j = doc.tracked.indexOf(state.coord);
  const s = Math.min(t, run.loss.length - 1);
  const d = run.diagnostics;
  const rows = [
    ["x", `x${doc.problem.dim > 1 ? `[${state.coord}]` : ""}ₜ`, column(run.x, j)[s]],
    ["dx", "Δxₜ = xₜ − xₜ₋₁", column(run.step, j)[s]],
  ];
  const names = { m: "mₜ", m_hat: "m̂ₜ", v: "vₜ", v_hat: "v̂ₜ", bias1: "1 − β₁ᵗ", bias2: "1 − β₂ᵗ",
    effective_lr: "α/(√v̂ₜ+ε)" };
  for (const [key, values] of Object.entries(d)) {
    rows.push([key, names[key] || key, column(values, j)[s]]);
  }
  $("#diag-readout tbody").replaceChildren(...rows.map(([key, title, v]) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = title;
    const td = document.createElement("td");
    td.dataset.key = key;
    td.dataset.value = exact(v);
    td.textContent = exact(v);
    tr.append(th, td);
    return tr;
  }));
  $("#diag-readout").dataset.step = String(s);
  $("#diag-readout").dataset.label = run.label;
}

function setStep(t, remember = true) {
  if (!doc) return;
  const T = lastStep();
  t = Math.max(0, Math.min(T, t));
  if (remember) state.t = t === T ? null : t;
  $("#step-range").value = String(t);
  $("#step-out").textContent = `t = ${t}`;
  for (const el of $$(".t-now")) el.textContent = `t = ${t}`;
  pathView.setStep(t);
  for (const c of Object.values(charts)) {
    if (c) {
      c.redraw(false, false);
      c.setLegend({ idx: Math.min(t, c.data[0].length - 1) });
    }
  }
  renderTableAt(t);
  renderReadout(t);
}

function renderTableAt(t) {
  for (const tr of $$("#results tbody tr")) {
    const traj = doc.trajectories.find((x) => x.label === tr.dataset.label && String(x.seed) === tr.dataset.seed);
    const s = Math.min(t, traj.loss.length - 1);
    const xt = $('[data-col="x-at-t"]', tr);
    xt.textContent = fmtVector(traj.x[s]);
    xt.dataset.value = xt.title = traj.x[s].map(exact).join(",");
    const ft = $('[data-col="f-at-t"]', tr);
    ft.textContent = fmt(traj.loss[s]);
    ft.dataset.value = ft.title = exact(traj.loss[s]);
  }
}

function togglePlay() {
  if (playing) {
    cancelAnimationFrame(playing);
    playing = null;
    $("#play").textContent = "▶";
    return;
  }
  const T = lastStep();
  let t = currentStep() >= T ? 0 : currentStep();
  const inc = Math.max(1, Math.round(T / 180));
  $("#play").textContent = "❚❚";
  const tick = () => {
    t = Math.min(T, t + inc);
    setStep(t);
    if (t >= T) {
      playing = null;
      $("#play").textContent = "▶";
      writeURL();
      return;
    }
    playing = requestAnimationFrame(tick);
  };
  setStep(t);
  playing = requestAnimationFrame(tick);
}

// ------------------------------------------------------------------------------------------
// share and export
// ------------------------------------------------------------------------------------------

async function download(format) {
  const status = $("#status");
  clearErrors();
  try {
    const blob = await api.exportRun(request(), format, $("#export-diagnostics").checked);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `adamlab-compare.${format}`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    status.textContent = `downloaded adamlab-compare.${format}`;
  } catch (e) {
    showError(e.field || "format", e.key, e.message);
  }
}

async function copyLink() {
  try {
    await navigator.clipboard.writeText(location.href);
    $("#status").textContent = "link copied: it reproduces this view";
  } catch (e) {
    $("#status").textContent = `copy this link: ${location.href}`;
  }
}

// ------------------------------------------------------------------------------------------
// start
// ------------------------------------------------------------------------------------------

async function main() {
  const [index, problems, optimizers] = await Promise.all([
    api.getJSON("/api"), api.getJSON("/api/problems"), api.getJSON("/api/optimizers"),
  ]);
  catalog.limits = index.limits;
  catalog.seed = index.seed_demo;
  catalog.problems = problems.problems;
  for (const p of problems.problems) catalog.byName[p.name] = p;
  for (const o of optimizers.optimizers) catalog.optimizers[o.name] = o;
  catalog.schedules = optimizers.schedules;

  readURL();
  buildProblemSelect();
  wireProblemControls();
  syncProblemControls();
  renderCards();
  pathView = new PathView($("#path-figure"));
  pathView.onPick = (start) => {
    state.start = start.join(", ");
    $("#start").value = state.start;
    state.t = null;
    run();
  };
  $("#step-range").addEventListener("input", () => setStep(Number($("#step-range").value)));
  $("#step-range").addEventListener("change", writeURL);
  $("#play").addEventListener("click", togglePlay);
  $("#add-opt").addEventListener("click", addOptimizer);
  $("#diag-opt").addEventListener("change", () => {
    state.diag = Number($("#diag-opt").value);
    renderDiagnostics();
    setStep(currentStep(), false);
    writeURL();
  });
  $("#diag-coord").addEventListener("change", () => {
    state.coord = Number($("#diag-coord").value);
    renderDiagnostics();
    setStep(currentStep(), false);
    writeURL();
  });
  for (const b of $$("[data-export]")) b.addEventListener("click", () => download(b.dataset.export));
  $("#copy-link").addEventListener("click", copyLink);
  window.addEventListener("resize", () => {
    fitWidth(charts.loss, $("#loss-chart"));
    for (const k of ["m", "v", "bias", "step"]) fitWidth(charts[k], $(`#diag-${k}`));
  });
  await run();
}

main().catch((e) => {
  document.body.dataset.state = "error";
  $("#status").textContent = `the page could not start: ${e.message}`;
});
