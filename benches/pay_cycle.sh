#!/usr/bin/env bash
# The paid-order path under load (create → prepay → the sandbox pays, its
# notify acknowledged), measured with benches/pay_cycle.rs against the
# release binary — and, to measure a change, side by side in one run
# against another build: rounds alternate between the two so the
# machine's drift falls on both.
# Usage: benches/pay_cycle.sh [seconds, default 15] [workers, default 64] [rounds, default 2]
# LASTMILE_BASE_BIN=path (and LASTMILE_BASE_DIR=its checkout, for its
# config/) adds the other build.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${1:-15}
WORKERS=${2:-64}
ROUNDS=${3:-2}
PORT=${LASTMILE_BENCH_PORT:-18090}

cargo build --release --quiet
cargo build --release --quiet --example pay_cycle

# run NAME BIN DIR: one fresh instance, logged-in customers, one measurement.
run() {
  local work pid
  work=$(mktemp -d)
  LASTMILE__HTTP__BIND=127.0.0.1:$PORT LASTMILE__STORAGE__PATH=$work/data RUST_LOG=warn \
    LASTMILE__ORDERS__MAX_UNPAID=100000000 \
    bash -c 'cd "$1" && exec "$2"' _ "$3" "$(realpath "$2")" &
  pid=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break
    sleep 0.1
  done
  for i in $(seq 1 "$WORKERS"); do
    curl -fs -X POST "http://127.0.0.1:$PORT/api/v1/auth/login" \
      -H 'Content-Type: application/json' -d "{\"code\":\"pay-user-$i\"}" |
      sed -E 's/.*"token":"([^"]+)".*/\1/'
    echo
  done > "$work/tokens"
  echo "$1: $(target/release/examples/pay_cycle "http://127.0.0.1:$PORT" "$work/tokens" "$SECONDS_PER_RUN" "$WORKERS")"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}

echo "machine: $(nproc) cores; $WORKERS workers, ${SECONDS_PER_RUN}s per run"
for round in $(seq 1 "$ROUNDS"); do
  run "this build (round $round)" target/release/lastmile .
  if [ -n "${LASTMILE_BASE_BIN:-}" ]; then
    run "base build (round $round)" "$LASTMILE_BASE_BIN" "${LASTMILE_BASE_DIR:-.}"
  fi
done
