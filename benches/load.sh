#!/usr/bin/env bash
# Load test against the real release binary, side by side in one run:
#   1. GET /healthz            (actix-web doing nothing: the ceiling here)
#   2. POST /api/v1/orders     (durable order creation, group commit)
# Prints req/s, p50 and p99 of each and their ratio.
# Usage: benches/load.sh [duration, default 15s] [connections, default 64]
# LASTMILE_BENCH_BIN=path runs another build of the binary (to compare two
# commits side by side in one session).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-15s}
CONNECTIONS=${2:-64}
PORT=${LASTMILE_BENCH_PORT:-18080}
USERS=${LASTMILE_BENCH_USERS:-256}

if ! command -v wrk >/dev/null; then
  echo "installing wrk..." >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
BIN=${LASTMILE_BENCH_BIN:-target/release/lastmile}
[ -n "${LASTMILE_BENCH_BIN:-}" ] || cargo build --release --quiet

WORK=$(mktemp -d)
# Every request makes an unpaid order: lift the per-customer bound
# (orders.max_unpaid) so the run measures creation, not 409s.
LASTMILE__HTTP__BIND=127.0.0.1:$PORT LASTMILE__STORAGE__PATH=$WORK/data RUST_LOG=warn \
  LASTMILE__ORDERS__MAX_UNPAID=100000000 \
  "$BIN" &
PID=$!
cleanup() { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done

for i in $(seq 1 "$USERS"); do
  curl -fs -X POST "http://127.0.0.1:$PORT/api/v1/auth/login" \
    -H 'Content-Type: application/json' -d "{\"code\":\"bench-user-$i\"}" |
    sed -E 's/.*"token":"([^"]+)".*/\1/'
  echo
done > "$WORK/tokens"
export LASTMILE_TOKENS=$WORK/tokens

echo "machine: $(nproc) cores; wrk -t2 -c$CONNECTIONS -d$DURATION"
base=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/baseline.lua \
  "http://127.0.0.1:$PORT/healthz" | grep '^RESULT')
echo "baseline (GET /healthz):        $base"
create=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/create_order.lua \
  "http://127.0.0.1:$PORT" | grep '^RESULT')
echo "durable create (POST /orders):  $create"

rate() { sed -E 's/.*req_per_s=([0-9]+).*/\1/' <<<"$1"; }
awk -v c="$(rate "$create")" -v b="$(rate "$base")" \
  'BEGIN { printf "ratio create/baseline: %.2f\n", c / b }'
