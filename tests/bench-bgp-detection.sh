#!/usr/bin/env bash
# Control-plane detection latency in the BGP lab: a route change
# (ttk-transit in dyn-2017-10-01: BIRD, GoBGP's BMP into the collector) to
# the collector's tumen_bgp_upstream_share_ratio changing, and to
# TumenBgpUpstreamChanged delivered to a webhook by Alertmanager, with the
# shipped settings (Prometheus scrape and evaluation 15 s, group_wait 30 s).
#   tests/bench-bgp-detection.sh [REPEATS=5]
# Targets: metric within 5 s, alert within 60 s. Medians and worst.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/bench-bgp-detection.sh: needs root (network namespaces): run it as root" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
repeats=${1:-5}
cargo build -q -p tumen-agent -p tumen-collector
cargo test -q -p tumen-lab --test e2e_bgp --no-run
metric=() alert=()
for r in $(seq 1 "$repeats"); do
  out=$(cargo test -q -p tumen-lab --test e2e_bgp bench_bgp -- --ignored --nocapture 2>&1) || true
  line=$(grep '^bgp-detection' <<<"$out" | tail -1) || true
  [ -n "$line" ] || { echo "run $r: no result:" >&2; tail -40 <<<"$out" >&2; exit 1; }
  echo "run $r: $line"
  metric+=("$(sed 's/.*metric_ms=\([0-9]*\).*/\1/' <<<"$line")")
  alert+=("$(sed 's/.*alert_ms=\([0-9]*\).*/\1/' <<<"$line")")
done
stats() { # median and worst of the arguments (ms) in seconds
  printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "median %.1f s, worst %.1f s", m/1000, a[NR]/1000}'
}
echo "change -> metric: $(stats "${metric[@]}")   (target 5 s)"
echo "change -> alert:  $(stats "${alert[@]}")   (target 60 s)"
