-- wrk script: POST realistic orders from many logged-in customers.
-- Tokens come one per line from the file named by LASTMILE_TOKENS.
-- Requests are formatted once in init() and replayed round-robin, so that
-- wrk's own Lua work does not eat the CPU the server is measured on.
local requests = {}
local n = 0
local pickups = {"cainiao-north", "cainiao-south", "jd-station", "sf-station", "ems-office",
                 "north-gate", "south-gate", "east-gate", "west-gate", "canteen-1", "canteen-2"}
local dropoffs = {"dorm-1", "dorm-2", "dorm-3", "dorm-4", "dorm-5", "dorm-6", "dorm-7", "dorm-8",
                  "dorm-9", "dorm-10", "dorm-11", "dorm-12", "library", "teaching-a", "lab-building"}

function init(args)
  local tokens = {}
  for line in io.lines(os.getenv("LASTMILE_TOKENS")) do
    if #line > 0 then table.insert(tokens, line) end
  end
  for i = 1, 2000 do
    local token = tokens[(i % #tokens) + 1]
    local kind = (i % 3 == 0) and "takeout" or "express"
    local body = string.format(
      '{"kind":"%s","pickup":{"place_id":"%s","detail":"shelf %d-%d"},' ..
      '"dropoff":{"place_id":"%s","detail":"room %d"},"pickup_code":"%d-%d-%04d",' ..
      '"fee_fen":%d,"note":"请放门口，谢谢"}',
      kind, pickups[(i % #pickups) + 1], i % 9 + 1, i % 40 + 1,
      dropoffs[(i % #dropoffs) + 1], 100 + i % 600, i % 9 + 1, i % 7 + 1, i % 10000,
      200 + (i % 9) * 50)
    requests[i] = wrk.format("POST", "/api/v1/orders",
      {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT req_per_s=%.0f p50_ms=%.2f p99_ms=%.2f requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
