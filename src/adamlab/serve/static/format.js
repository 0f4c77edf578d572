// Numbers as adamlab prints them, and exactly.
//
// fmt(v) is adamlab.lab.metrics.fmt_number: 7 significant digits between 1e-4 and 1e7,
// else 4, in Python's "%g" style (2.000086, 7.333e-09, nan, inf). exact(v) is the shortest
// text that reads back as the same double (what Python's repr gives, up to exponent style).

function stripZeros(s) {
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}

// Python's format(v, f".{p}g") for a finite, non-zero v
function g(v, p) {
  const [mantissa, exponent] = v.toExponential(p - 1).split("e");
  const x = parseInt(exponent, 10);
  if (x < -4 || x >= p) {
    const sign = x < 0 ? "-" : "+";
    return `${stripZeros(mantissa)}e${sign}${String(Math.abs(x)).padStart(2, "0")}`;
  }
  return stripZeros(v.toFixed(Math.max(0, p - 1 - x)));
}

export function fmt(v) {
  if (v === null || v === undefined) return "-";
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (v === 0) return Object.is(v, -0) ? "-0" : "0";
  const a = Math.abs(v);
  return a >= 1e-4 && a < 1e7 ? g(v, 7) : g(v, 4);
}

export function exact(v) {
  if (v === null || v === undefined) return "-";
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  return String(v);
}

// a vector as the table prints it: 2.000086 or (0.9521885, 0.9065059)
export function fmtVector(xs, f = fmt) {
  return xs.length === 1 ? f(xs[0]) : `(${xs.map(f).join(", ")})`;
}

// a hyperparameter value as spec text (the grammar's syntax: 0.1, 1e-8, true, 0.9/0.999, inf)
export function specText(v) {
  if (Array.isArray(v)) return v.map(specText).join("/");
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") return exact(v);
  if (v === "Infinity") return "inf";
  return String(v);
}
