#!/usr/bin/env bash
# Replays every MDRP instance with lastmile's planner and with the greedy
# baseline, side by side, each under the instances' hard 90-minute rule and
# with --late (orders that can no longer make it are delivered late rather
# than never), and prints per seed and overall: undelivered %, the share of
# orders nobody could deliver within the maximum, click-to-door mean/90th
# and its lower bound on the delivered orders, ready-to-pickup mean, cost
# per order, replay wall time; then the planning round's p50/p99 on the
# largest instance.
# Usage: benches/mdrp.sh [instances dir, default ../shared/mdrp/instances] [extra replay flags]
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-../shared/mdrp/instances}
shift || true
cargo build --release --quiet
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for inst in "$DIR"/*/; do
  name=$(basename "$inst")
  for policy in planner greedy; do
    for late in "" --late; do
      target/release/lastmile replay mdrp "$inst" --out "$OUT/$name-$policy$late" --policy "$policy" $late "$@" |
        grep '^RESULT' | sed "s/policy=$policy/policy=$policy${late:+-late}/" ||
        echo "RESULT instance=$name policy=$policy${late:+-late} failed=1"
    done
  done
done > "$OUT/results"
awk '
function v(k,   i, kv) { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
/^RESULT/ {
  name = v("instance"); p = v("policy"); seed = substr(name, 1, 1)
  if (v("failed") != "") { fail[p]++; next }
  for (g = 0; g < 2; g++) {
    key = (g ? "all" : seed) SUBSEP p
    n[key]++; und[key] += 100 - v("delivered_pct"); ctd[key] += v("ctd_mean"); p90[key] += v("ctd_p90")
    imp[key] += 100 * (1 - v("deliverable") / v("orders")); lb[key] += v("ctd_bound")
    r2p[key] += v("r2p_mean"); cost[key] += v("cost"); wall[key] += v("wall_s")
  }
  seeds[seed] = 1
  if (p == "planner" && v("orders") + 0 > maxo) { maxo = v("orders") + 0; big = name; bp50 = v("round_p50_ms"); bp99 = v("round_p99_ms"); bwall = v("wall_s") }
}
END {
  printf "%-6s %-13s %4s %8s %8s %9s %8s %8s %8s %8s %8s\n", "seed", "policy", "n", "undeliv%", "imposs%", "ctd_mean", "ctd_p90", "ctd_LB", "r2p", "cost$", "wall_s"
  ns = 0; for (s in seeds) list[++ns] = s
  for (i = 1; i <= ns; i++) for (j = i + 1; j <= ns; j++) if (list[j] < list[i]) { t = list[i]; list[i] = list[j]; list[j] = t }
  list[++ns] = "all"
  split("planner planner-late greedy greedy-late", policies, " ")
  for (i = 1; i <= ns; i++) for (q = 1; q <= 4; q++) {
    p = policies[q]; key = list[i] SUBSEP p; c = n[key]; if (!c) continue
    printf "%-6s %-13s %4d %8.2f %8.2f %9.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n", list[i], p, c, und[key]/c, imp[key]/c, ctd[key]/c, p90[key]/c, lb[key]/c, r2p[key]/c, cost[key]/c, wall[key]
  }
  printf "Reyes et al. 2018 (all 240):  0.25 undelivered %%, ctd 32.74 / 49.3, r2p 1.93, $11.42\n"
  printf "largest instance %s (%d orders): round p50 %.3f ms, p99 %.3f ms, replay %.2f s\n", big, maxo, bp50, bp99, bwall
  for (p in fail) printf "FAILED runs (%s): %d\n", p, fail[p]
}' "$OUT/results"
