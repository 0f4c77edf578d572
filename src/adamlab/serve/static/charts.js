// Step-indexed line charts (uPlot, vendored): the loss against the step and the four
// diagnostics panels. Every chart shares one cursor (hover one, all follow), shows the exact
// recorded values in its legend, and marks the scrubber's step with a vertical line.

import uPlot from "./vendor/uPlot.esm.js";
import { exact } from "./format.js";

const SYNC_KEY = "adamlab-steps"; // one cursor for every chart on the page
const GRID = { stroke: "rgba(0,0,0,0.07)", width: 1 };
const TICKS = { stroke: "rgba(0,0,0,0.25)", width: 1, size: 4 };

function axisText(v) {
  if (v === null || v === undefined) return "";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(0).replace("+", "");
  return String(+v.toPrecision(4));
}

function allPositive(columns) {
  let seen = false;
  for (const col of columns) {
    for (const v of col) {
      if (v === null || !Number.isFinite(v)) continue;
      if (v <= 0) return false;
      seen = true;
    }
  }
  return seen;
}

// NaN and ±inf are gaps in a chart (and on a log axis, so are values <= 0)
function plottable(values, log) {
  return values.map((v) => (Number.isFinite(v) && (!log || v > 0) ? v : null));
}

// series: [{label, color, values, dash?, width?, shown?: values to show in the legend}]
export function lineChart(el, { series, steps, yLabel, getStep, height = 260, logIfPositive = true }) {
  const log = logIfPositive && allPositive(series.map((s) => s.values));
  // off the chart, the legend shows the scrubber's step
  const atStep = (u) => {
    const t = getStep();
    if (u.cursor.idx === null || u.cursor.idx === undefined) {
      if (t !== null && t !== undefined) u.setLegend({ idx: Math.min(t, u.data[0].length - 1) }, false);
    }
  };
  const marker = {
    hooks: {
      ready: [atStep],
      setCursor: [atStep],
      draw: [
        (u) => {
          const t = getStep();
          if (t === null || t === undefined) return;
          const x = u.valToPos(t, "x", true);
          const { top, height: h } = u.bbox;
          const ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = "rgba(0,0,0,0.45)";
          ctx.lineWidth = uPlot.pxRatio;
          ctx.setLineDash([4 * uPlot.pxRatio, 3 * uPlot.pxRatio]);
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + h);
          ctx.stroke();
          ctx.restore();
        },
      ],
    },
  };
  const opts = {
    width: Math.max(240, el.clientWidth),
    height,
    plugins: [marker],
    cursor: { sync: { key: SYNC_KEY }, points: { size: 6 } },
    legend: { live: true },
    scales: { x: { time: false }, y: log ? { distr: 3, log: 10 } : { auto: true } },
    axes: [
      { label: "step t", values: (u, splits) => splits.map(axisText), grid: GRID, ticks: TICKS },
      { label: yLabel, size: 64, values: (u, splits) => splits.map(axisText), grid: GRID, ticks: TICKS },
    ],
    series: [
      { label: "t", value: (u, v) => (v === null || v === undefined ? "–" : String(v)) },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: s.width || 1.5,
        dash: s.dash,
        spanGaps: false,
        points: { show: false },
        value: (u, v, si, idx) => {
          const shown = s.shown || s.values;
          return idx === null || idx === undefined || idx >= shown.length ? "–" : exact(shown[idx]);
        },
      })),
    ],
  };
  const data = [steps, ...series.map((s) => plottable(s.values, log))];
  el.replaceChildren();
  const chart = new uPlot(opts, data, el);
  chart.adamlabLog = log;
  return chart;
}

export function emptyChart(el, message) {
  const p = document.createElement("p");
  p.className = "chart-empty";
  p.textContent = message;
  el.replaceChildren(p);
  return null;
}

// keep charts as wide as their boxes
export function fitWidth(chart, el) {
  if (chart && el.clientWidth && Math.abs(chart.width - el.clientWidth) > 2) {
    chart.setSize({ width: el.clientWidth, height: chart.height });
  }
}
