-- wrk script: GET /healthz, the in-run ceiling (actix-web storing nothing).
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT req_per_s=%.0f p50_ms=%.2f p99_ms=%.2f requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
