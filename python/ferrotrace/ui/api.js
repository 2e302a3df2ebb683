// The one client of the server's API: Jaeger's endpoints (/api/...) and
// ferrotrace's own (/api/ferrotrace/...). Every answer is the envelope
// {data, total, limit, offset, errors}; a failed request throws ApiError
// with the server's reason.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function get(path, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") query.set(k, String(v));
  }
  const qs = query.toString();
  let response;
  try {
    response = await fetch(qs ? `${path}?${qs}` : path, { headers: { Accept: "application/json" } });
  } catch (e) {
    throw new ApiError(0, `the server did not answer (${e.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    throw new ApiError(response.status, `${response.status} ${response.statusText}`);
  }
  if (!response.ok) {
    const errors = (body && body.errors) || [];
    const reason = errors.map((e) => (e && e.msg) || String(e)).join("; ");
    throw new ApiError(response.status, reason || `${response.status} ${response.statusText}`);
  }
  return body.data;
}

export const api = {
  services: () => get("/api/services"),
  operations: (service) => get(`/api/services/${encodeURIComponent(service)}/operations`),
  /** Jaeger's search: service, operation, tags (JSON text), minDuration, maxDuration, start, end (µs), limit. */
  searchTraces: (params) => get("/api/traces", params),
  trace: async (traceID) => (await get(`/api/traces/${encodeURIComponent(traceID)}`))[0],
  criticalPath: (traceID) => get(`/api/ferrotrace/critical-path/${encodeURIComponent(traceID)}`),
  serviceGraph: () => get("/api/ferrotrace/service-graph"),
  operationStats: (params) => get("/api/ferrotrace/operations", params),
  errorGroups: (params) => get("/api/ferrotrace/errors", params),
};

/**
 * Runs `refresh` every `ms` while the page is visible, one run at a time:
 * how every view shows new traces without a reload.
 */
export function every(ms, refresh) {
  let running = false;
  return setInterval(async () => {
    if (running || document.hidden) return;
    running = true;
    try {
      await refresh();
    } catch (e) {
      // The next round tries again; the view keeps what it shows.
    } finally {
      running = false;
    }
  }, ms);
}

/** A Jaeger trace's summary: root, start, duration, services, errors. */
export function summarise(trace) {
  const spans = trace.spans || [];
  const ids = new Set(spans.map((s) => s.spanID));
  let start = Infinity;
  let end = -Infinity;
  let root = null;
  let errors = 0;
  const services = new Map();
  for (const s of spans) {
    start = Math.min(start, s.startTime);
    end = Math.max(end, s.startTime + s.duration);
    const isRoot = !(s.references || []).some((r) => ids.has(r.spanID));
    if (isRoot && (root === null || s.startTime < root.startTime)) root = s;
    if (isError(s)) errors++;
    const service = serviceOf(trace, s);
    services.set(service, (services.get(service) || 0) + 1);
  }
  return {
    traceID: trace.traceID,
    root,
    service: root ? serviceOf(trace, root) : "",
    operation: root ? root.operationName : "",
    start,
    duration: spans.length ? end - start : 0,
    spanCount: spans.length,
    errors,
    services,
  };
}

export function serviceOf(trace, span) {
  const p = (trace.processes || {})[span.processID];
  return p ? String(p.serviceName) : "";
}

export function isError(span) {
  return (span.tags || []).some((t) => t.key === "error" && (t.value === true || t.value === "true"));
}
