// Where the optimizers went, drawn on a canvas from the recorded result: in 1-D the paths
// (x_t, f(x_t)) over the loss curve, in 2-D the paths over log-spaced level bands of the
// loss surface the lab recorded. Hover: exact values of the nearest iterate. Click: a new
// start point. Nothing here evaluates the problem; every value comes from the result.

import { exact, fmt } from "./format.js";

const MARGIN = { left: 58, right: 14, top: 12, bottom: 40 };
const LEVELS = 20; // as adamlab.plot.log_levels: n levels log-spaced in f - min f
const VIRIDIS = [
  [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [110, 206, 88], [181, 222, 43], [253, 231, 37],
];

function viridis(u) {
  const x = Math.min(1, Math.max(0, u)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  return VIRIDIS[i].map((c, k) => Math.round(c + f * (VIRIDIS[i + 1][k] - c)));
}

function finite(values) {
  return values.filter((v) => Number.isFinite(v));
}

// ticks at 1, 2, 5 × 10^k covering [lo, hi]
function ticks(lo, hi, count = 6) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

function tickText(v) {
  return String(+v.toPrecision(4));
}

// a number clicked on the picture, rounded to what the picture can resolve
function roundFor(v, width) {
  const decimals = Math.max(0, 3 - Math.floor(Math.log10(width)));
  return +v.toFixed(decimals);
}

function drawMarker(ctx, shape, x, y, r) {
  ctx.beginPath();
  if (shape === 1) {
    ctx.rect(x - r, y - r, 2 * r, 2 * r);
  } else if (shape === 2 || shape === 4) {
    const s = shape === 2 ? -1 : 1;
    ctx.moveTo(x, y + s * r * 1.2);
    ctx.lineTo(x + r * 1.1, y - s * r * 0.8);
    ctx.lineTo(x - r * 1.1, y - s * r * 0.8);
    ctx.closePath();
  } else if (shape === 3) {
    ctx.moveTo(x, y - r * 1.3);
    ctx.lineTo(x + r, y);
    ctx.lineTo(x, y + r * 1.3);
    ctx.lineTo(x - r, y);
    ctx.closePath();
  } else {
    ctx.arc(x, y, r, 0, 2 * Math.PI);
  }
}

function star(ctx, x, y, r) {
  ctx.beginPath();
  for (let k = 0; k < 10; k++) {
    const a = -Math.PI / 2 + (k * Math.PI) / 5;
    const rr = k % 2 ? r * 0.45 : r;
    ctx.lineTo(x + rr * Math.cos(a), y + rr * Math.sin(a));
  }
  ctx.closePath();
  ctx.fillStyle = "gold";
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 1;
  ctx.fill();
  ctx.stroke();
}

export class PathView {
  constructor(figure) {
    this.figure = figure;
    this.canvas = figure.querySelector("canvas");
    this.tip = figure.querySelector(".tooltip");
    this.doc = null;
    this.runs = [];
    this.colors = [];
    this.step = 0;
    this.onPick = null;
    this.background = null;
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => { this.tip.hidden = true; });
    this.canvas.addEventListener("click", (e) => this.pick(e));
    new ResizeObserver(() => this.resize()).observe(figure);
  }

  setData(doc, runs, colors) {
    this.doc = doc;
    this.runs = runs;
    this.colors = colors;
    this.dim = doc.problem.dim;
    this.background = null;
    const s = doc.surface;
    this.surface = s && s.axes.length === this.dim && this.dim <= 2 ? s : null;
    this.figure.classList.toggle("empty", !this.surface);
    if (!this.surface) {
      this.clear("a picture of the paths needs a problem of dimension 1 or 2");
      return;
    }
    const xs = s.axes[0];
    this.x0 = xs[0];
    this.x1 = xs[xs.length - 1];
    if (this.dim === 1) {
      const fx = finite(s.loss);
      const lo = fx.length ? Math.min(...fx) : 0;
      const hi = fx.length ? Math.max(...fx) : 1;
      const pad = 0.05 * (hi - lo || 1);
      [this.y0, this.y1] = [lo - pad, hi + pad];
      const wpad = 0.02 * (this.x1 - this.x0);
      [this.x0, this.x1] = [this.x0 - wpad, this.x1 + wpad];
    } else {
      const ys = s.axes[1];
      [this.y0, this.y1] = [ys[0], ys[ys.length - 1]];
      this.prepareLevels();
    }
    this.resize();
  }

  setStep(t) {
    this.step = t;
    this.draw();
  }

  resize() {
    const rect = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(200, Math.round(rect.width));
    const h = Math.max(200, Math.round(rect.height));
    if (this.canvas.width !== w * dpr || this.canvas.height !== h * dpr) {
      this.canvas.width = w * dpr;
      this.canvas.height = h * dpr;
      this.background = null;
    }
    this.w = w;
    this.h = h;
    this.dpr = dpr;
    this.box = {
      left: MARGIN.left, top: MARGIN.top,
      width: w - MARGIN.left - MARGIN.right, height: h - MARGIN.top - MARGIN.bottom,
    };
    this.draw();
  }

  px(x) {
    return this.box.left + ((x - this.x0) / (this.x1 - this.x0)) * this.box.width;
  }

  py(y) {
    return this.box.top + (1 - (y - this.y0) / (this.y1 - this.y0)) * this.box.height;
  }

  dataAt(cx, cy) {
    const x = this.x0 + ((cx - this.box.left) / this.box.width) * (this.x1 - this.x0);
    const y = this.y0 + (1 - (cy - this.box.top) / this.box.height) * (this.y1 - this.y0);
    return [x, y];
  }

  // the point of the picture a run is at after t steps: (x_t, f(x_t)) in 1-D, x_t in 2-D
  point(run, t) {
    const x = run.x[t];
    return this.dim === 1 ? [x[0], run.loss[t]] : [x[0], x[1]];
  }

  lastStep(run) {
    return Math.min(this.step, run.loss.length - 1);
  }

  // log-spaced bands of f - min f, as adamlab.plot.log_levels spaces its contour levels
  prepareLevels() {
    const Z = this.surface.loss;
    const flat = finite(Z.flat());
    const base = Math.min(...flat);
    const gaps = flat.map((z) => z - base);
    const top = Math.max(...gaps);
    const positive = gaps.filter((g) => g > 0).sort((a, b) => a - b);
    const q = positive.length ? positive[Math.floor(0.002 * (positive.length - 1))] : top;
    const low = Math.max(q, top * 1e-7);
    this.levels = { base, low, top, logRatio: Math.log(top / low) };
    this.logGap = Z.map((row) => row.map((z) => (Number.isFinite(z) ? Math.log(Math.max(z - base, low * 1e-3)) : NaN)));
  }

  band(logGap) {
    const { low, logRatio } = this.levels;
    if (!Number.isFinite(logGap)) return LEVELS;
    const u = (logGap - Math.log(low)) / logRatio;
    return Math.max(-1, Math.min(LEVELS, Math.floor(u * (LEVELS - 1))));
  }

  renderBackground() {
    const { box, dpr } = this;
    const W = Math.round(box.width * dpr);
    const H = Math.round(box.height * dpr);
    const ctx = this.canvas.getContext("2d");
    const image = ctx.createImageData(W, H);
    const [xs, ys] = this.surface.axes;
    const nx = xs.length;
    const ny = ys.length;
    const G = this.logGap;
    const bands = new Int16Array(W * H);
    for (let j = 0; j < H; j++) {
      const y = this.y1 - ((j + 0.5) / H) * (this.y1 - this.y0);
      const fy = Math.min(ny - 1.000001, Math.max(0, ((y - ys[0]) / (ys[ny - 1] - ys[0])) * (ny - 1)));
      const j0 = Math.floor(fy);
      const ty = fy - j0;
      for (let i = 0; i < W; i++) {
        const x = this.x0 + ((i + 0.5) / W) * (this.x1 - this.x0);
        const fx = Math.min(nx - 1.000001, Math.max(0, ((x - xs[0]) / (xs[nx - 1] - xs[0])) * (nx - 1)));
        const i0 = Math.floor(fx);
        const tx = fx - i0;
        const v = (1 - ty) * ((1 - tx) * G[j0][i0] + tx * G[j0][i0 + 1])
          + ty * ((1 - tx) * G[j0 + 1][i0] + tx * G[j0 + 1][i0 + 1]);
        bands[j * W + i] = this.band(v);
      }
    }
    for (let j = 0; j < H; j++) {
      for (let i = 0; i < W; i++) {
        const b = bands[j * W + i];
        const edge = (i + 1 < W && bands[j * W + i + 1] !== b) || (j + 1 < H && bands[(j + 1) * W + i] !== b);
        const [r, g, bl] = viridis((b + 1) / (LEVELS + 1));
        const k = 4 * (j * W + i);
        const mix = edge ? 0.15 : 0.78; // band fill: the level's colour, mostly white
        image.data[k] = Math.round(r + mix * (255 - r));
        image.data[k + 1] = Math.round(g + mix * (255 - g));
        image.data[k + 2] = Math.round(bl + mix * (255 - bl));
        image.data[k + 3] = 255;
      }
    }
    this.background = image;
  }

  clear(message) {
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (message) {
      ctx.setTransform(this.dpr || 1, 0, 0, this.dpr || 1, 0, 0);
      ctx.fillStyle = "#666";
      ctx.font = "14px system-ui, sans-serif";
      ctx.fillText(message, 20, 40);
    }
  }

  draw() {
    if (!this.doc || !this.surface || !this.box) return;
    const ctx = this.canvas.getContext("2d");
    const { box, dpr } = this;
    this.clear();
    if (this.dim === 2) {
      if (!this.background) this.renderBackground();
      ctx.putImageData(this.background, Math.round(box.left * dpr), Math.round(box.top * dpr));
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.drawAxes(ctx);
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.left, box.top, box.width, box.height);
    ctx.clip();
    if (this.dim === 1) {
      const [xs] = this.surface.axes;
      ctx.beginPath();
      xs.forEach((x, i) => {
        const y = this.surface.loss[i];
        if (Number.isFinite(y)) ctx.lineTo(this.px(x), this.py(y));
      });
      ctx.strokeStyle = "#595959";
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
    // the first optimizer on top, as adamlab.plot draws it
    for (let r = this.runs.length - 1; r >= 0; r--) this.drawRun(ctx, r);
    const p = this.doc.problem;
    if (this.dim === 2) {
      const s = this.doc.start;
      ctx.beginPath();
      ctx.arc(this.px(s[0]), this.py(s[1]), 5, 0, 2 * Math.PI);
      ctx.fillStyle = "#fff";
      ctx.fill();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#000";
      ctx.stroke();
      if (p.x_star) star(ctx, this.px(p.x_star[0]), this.py(p.x_star[1]), 9);
    } else if (p.x_star && p.f_star !== null) {
      star(ctx, this.px(p.x_star[0]), this.py(p.f_star), 9);
    }
    ctx.restore();
  }

  drawRun(ctx, r) {
    const run = this.runs[r];
    const color = this.colors[r];
    const last = this.lastStep(run);
    const every = Math.max(1, Math.floor(run.loss.length / 60));
    ctx.beginPath();
    for (let t = 0; t <= last; t++) {
      const [a, b] = this.point(run, t);
      if (Number.isFinite(a) && Number.isFinite(b)) ctx.lineTo(this.px(a), this.py(b));
    }
    ctx.strokeStyle = color;
    ctx.lineWidth = this.dim === 1 ? 1 : 1.3;
    ctx.stroke();
    ctx.fillStyle = color;
    for (let t = 0; t <= last; t += every) {
      const [a, b] = this.point(run, t);
      if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
      drawMarker(ctx, r % 5, this.px(a), this.py(b), 3);
      ctx.fill();
    }
    const [a, b] = this.point(run, last);
    if (Number.isFinite(a) && Number.isFinite(b)) {
      drawMarker(ctx, r % 5, this.px(a), this.py(b), 6);
      ctx.fill();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#000";
      ctx.stroke();
    }
  }

  drawAxes(ctx) {
    const { box } = this;
    ctx.strokeStyle = "#333";
    ctx.lineWidth = 1;
    ctx.strokeRect(box.left, box.top, box.width, box.height);
    ctx.fillStyle = "#333";
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const v of ticks(this.x0, this.x1)) {
      const x = this.px(v);
      ctx.beginPath();
      ctx.moveTo(x, box.top + box.height);
      ctx.lineTo(x, box.top + box.height + 4);
      ctx.stroke();
      ctx.fillText(tickText(v), x, box.top + box.height + 6);
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of ticks(this.y0, this.y1, 5)) {
      const y = this.py(v);
      ctx.beginPath();
      ctx.moveTo(box.left - 4, y);
      ctx.lineTo(box.left, y);
      ctx.stroke();
      ctx.fillText(tickText(v), box.left - 6, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    ctx.fillText("x", box.left + box.width / 2, this.h - 2);
    ctx.save();
    ctx.translate(14, box.top + box.height / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText(this.dim === 1 ? "f(x)" : "y", 0, 0);
    ctx.restore();
  }

  nearest(cx, cy) {
    let best = null;
    this.runs.forEach((run, r) => {
      for (let t = 0; t <= this.lastStep(run); t++) {
        const [a, b] = this.point(run, t);
        if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
        const d = Math.hypot(this.px(a) - cx, this.py(b) - cy);
        if (d < 9 && (!best || d < best.d)) best = { d, r, t };
      }
    });
    return best;
  }

  inside(cx, cy) {
    const { box } = this;
    return cx >= box.left && cx <= box.left + box.width && cy >= box.top && cy <= box.top + box.height;
  }

  hover(e) {
    if (!this.doc || !this.surface) return;
    const rect = this.canvas.getBoundingClientRect();
    const cx = e.clientX - rect.left;
    const cy = e.clientY - rect.top;
    const hit = this.nearest(cx, cy);
    const lines = [];
    if (hit) {
      const run = this.runs[hit.r];
      const x = run.x[hit.t];
      lines.push([run.label, this.colors[hit.r]]);
      lines.push([`t = ${hit.t}`]);
      x.forEach((v, k) => lines.push([`${this.dim === 1 ? "x" : ["x", "y"][k]} = ${exact(v)}`]));
      lines.push([`f = ${exact(run.loss[hit.t])}`]);
    } else if (this.inside(cx, cy)) {
      const [x, y] = this.dataAt(cx, cy);
      const w = this.x1 - this.x0;
      const where = this.dim === 1 ? `x = ${fmt(roundFor(x, w))}`
        : `(${fmt(roundFor(x, w))}, ${fmt(roundFor(y, this.y1 - this.y0))})`;
      lines.push([`${where}: click to start here`]);
    }
    if (!lines.length) {
      this.tip.hidden = true;
      return;
    }
    this.tip.replaceChildren(...lines.map(([text, color]) => {
      const div = document.createElement("div");
      div.textContent = text;
      if (color) {
        div.className = "tip-label";
        div.style.borderLeftColor = color;
      }
      return div;
    }));
    this.tip.hidden = false;
    const left = Math.min(cx + 14, this.w - this.tip.offsetWidth - 4);
    this.tip.style.left = `${Math.max(0, left)}px`;
    this.tip.style.top = `${Math.max(0, cy + 14)}px`;
  }

  pick(e) {
    if (!this.doc || !this.surface || !this.onPick) return;
    const rect = this.canvas.getBoundingClientRect();
    const cx = e.clientX - rect.left;
    const cy = e.clientY - rect.top;
    if (!this.inside(cx, cy)) return;
    const [x, y] = this.dataAt(cx, cy);
    const start = [roundFor(x, this.x1 - this.x0)];
    if (this.dim === 2) start.push(roundFor(y, this.y1 - this.y0));
    this.onPick(start);
  }
}
