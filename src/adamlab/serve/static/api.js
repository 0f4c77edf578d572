// The page's only contact with the server: the JSON API documented at GET /api.

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.field = body ? body.field : null;
    this.key = body ? body.key : null;
  }
}

// strict JSON writes non-finite numbers as strings; read them back as numbers
function revive(key, value) {
  if (value === "NaN") return NaN;
  if (value === "Infinity") return Infinity;
  if (value === "-Infinity") return -Infinity;
  return value;
}

async function check(response) {
  if (response.ok) return response;
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = { error: `HTTP ${response.status}`, field: null };
  }
  throw new ApiError(response.status, body);
}

export async function getJSON(path) {
  const response = await check(await fetch(path, { headers: { accept: "application/json" } }));
  return response.json();
}

function post(path, request, signal) {
  return fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(request),
    signal,
  });
}

// -> {doc: the adamlab compare --json document, timing: {compute, total} in ms}
export async function compare(request, signal) {
  const response = await check(await post("/api/compare", request, signal));
  const doc = JSON.parse(await response.text(), revive);
  const timing = {};
  for (const part of (response.headers.get("server-timing") || "").split(",")) {
    const m = part.trim().match(/^(\w+);dur=([\d.]+)/);
    if (m) timing[m[1]] = parseFloat(m[2]);
  }
  return { doc, timing };
}

export async function exportRun(request, format, diagnostics) {
  const query = `format=${format}&diagnostics=${diagnostics ? 1 : 0}`;
  const response = await check(await post(`/api/export?${query}`, request));
  return response.blob();
}
