#!/usr/bin/env bash
# What sled's flush and its settings cost the durable floor
# (benches/durable_peer.rs): for each setting, a fresh database, a 10 s
# wrk run of realistic creates, and the server's CPU per request (user +
# system time of the process over the requests it answered).
# Usage: benches/floor_settings.sh [duration, default 10s] [runs, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
RUNS=${2:-3}
PORT=18092
command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
cargo build --release --quiet --example durable_peer
: > /tmp/floor-tokens
# 256 customers, as benches/load.sh logs in.
for i in $(seq 1 256); do echo "floor-$i" >> /tmp/floor-tokens; done
export LASTMILE_TOKENS=/tmp/floor-tokens
ticks=$(getconf CLK_TCK)

one() { # name window env...
  local name=$1 window=$2; shift 2
  local dir; dir=$(mktemp -d)
  env "$@" target/release/examples/durable_peer "127.0.0.1:$PORT" "$dir/db" "$window" &
  local pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  local before; before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  local out; out=$(wrk -t2 -c64 -d"$DURATION" --latency -s benches/create_order.lua "http://127.0.0.1:$PORT" | grep '^RESULT')
  local after; after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
  local reqs; reqs=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$out")
  local rate; rate=$(sed -E 's/.*req_per_s=([0-9]+).*/\1/' <<<"$out")
  local p99; p99=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$out")
  awk -v n="$name" -v r="$rate" -v p="$p99" -v c="$((after - before))" -v q="$reqs" -v t="$ticks" \
    'BEGIN { printf "%-28s %8d req/s  p99 %6.2f ms  %6.1f us CPU/request\n", n, r, p, c / t * 1e6 / q }'
}

for run in $(seq 1 "$RUNS"); do
  echo "run $run"
  one "no flush (not durable)" none
  one "floor (lastmile's settings)" 1
  one "segment 128 KiB" 1 FLOOR_SEGMENT_SIZE=131072
  one "segment 8 MiB" 1 FLOOR_SEGMENT_SIZE=8388608
  one "cache 64 MiB" 1 FLOOR_CACHE_MB=64
  one "mode small" 1 FLOOR_MODE=small
  one "keys by customer (as orders)" 1 FLOOR_KEYS=customer
done
