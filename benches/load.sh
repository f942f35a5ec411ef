#!/usr/bin/env bash
# Load test against the real release binary, side by side in one run with
# a bare actix-web peer (benches/bare_peer.rs: the same routes and JSON
# parsing, nothing else — the ceiling of the request path here):
#   1. GET /healthz            on the peer, then on lastmile
#   2. POST /api/v1/orders     on the peer (parse, fixed 201), on the
#                              durable peer (benches/durable_peer.rs: parse,
#                              one sled insert, ack after the group-commit
#                              flush: the floor of any durable create here),
#                              then on lastmile (durable creation)
# Prints req/s, p50 and p99 of each and lastmile's ratios to the peers.
# Usage: benches/load.sh [duration, default 15s] [connections, default 64]
# LASTMILE_BENCH_BIN=path runs another build of the binary (to compare two
# commits side by side in one session), from LASTMILE_BENCH_DIR (that
# commit's checkout, for its config/) when given.
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
cargo build --release --quiet --example bare_peer --example durable_peer
PEER_PORT=$((PORT + 1))
FLOOR_PORT=$((PORT + 2))

WORK=$(mktemp -d)
# Every request makes an unpaid order: lift the per-customer bound
# (orders.max_unpaid) so the run measures creation, not 409s.
LASTMILE__HTTP__BIND=127.0.0.1:$PORT LASTMILE__STORAGE__PATH=$WORK/data RUST_LOG=warn \
  LASTMILE__ORDERS__MAX_UNPAID=100000000 \
  bash -c 'cd "$1" && exec "$2"' _ "${LASTMILE_BENCH_DIR:-.}" "$(realpath "$BIN")" &
PID=$!
target/release/examples/bare_peer "127.0.0.1:$PEER_PORT" &
PEER=$!
target/release/examples/durable_peer "127.0.0.1:$FLOOR_PORT" "$WORK/floor" &
FLOOR=$!
cleanup() {
  kill -TERM "$PID" "$PEER" "$FLOOR" 2>/dev/null || true
  wait "$PID" "$PEER" "$FLOOR" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for port in "$PORT" "$PEER_PORT" "$FLOOR_PORT"; do
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
  done
done

for i in $(seq 1 "$USERS"); do
  curl -fs -X POST "http://127.0.0.1:$PORT/api/v1/auth/login" \
    -H 'Content-Type: application/json' -d "{\"code\":\"bench-user-$i\"}" |
    sed -E 's/.*"token":"([^"]+)".*/\1/'
  echo
done > "$WORK/tokens"
export LASTMILE_TOKENS=$WORK/tokens

echo "machine: $(nproc) cores; wrk -t2 -c$CONNECTIONS -d$DURATION"
run() { wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$1" "$2" | grep '^RESULT'; }
peer_health=$(run benches/baseline.lua "http://127.0.0.1:$PEER_PORT/healthz")
echo "bare peer   GET /healthz:       $peer_health"
health=$(run benches/baseline.lua "http://127.0.0.1:$PORT/healthz")
echo "lastmile    GET /healthz:       $health"
peer_create=$(run benches/create_order.lua "http://127.0.0.1:$PEER_PORT")
echo "bare peer   POST /orders:       $peer_create"
create=$(run benches/create_order.lua "http://127.0.0.1:$PORT")
echo "lastmile    POST /orders:       $create  (durable)"
# Its writes must not still be written back under the next run.
sync
floor_create=$(run benches/create_order.lua "http://127.0.0.1:$FLOOR_PORT")
echo "durable peer POST /orders:      $floor_create  (durable floor)"

rate() { sed -E 's/.*req_per_s=([0-9]+).*/\1/' <<<"$1"; }
awk -v h="$(rate "$health")" -v ph="$(rate "$peer_health")" \
    -v c="$(rate "$create")" -v pc="$(rate "$peer_create")" -v fc="$(rate "$floor_create")" \
  'BEGIN {
     printf "ratio /healthz lastmile/peer: %.2f\n", h / ph
     printf "ratio create  lastmile/peer: %.2f\n", c / pc
     printf "ratio create  durable peer/peer: %.2f (the most any durable create reaches here)\n", fc / pc
     printf "ratio create  lastmile/durable peer: %.2f\n", c / fc
   }'
