#!/usr/bin/env bash
# Detection latency: route change (ttk-activation in the dprk-2017 lab) to
# the collector's metric changing and to TumenUpstreamChanged delivered to
# a webhook by Alertmanager, with the real agents, collector, Prometheus
# and Alertmanager (`tumen-lab demo --bench`), for
#   defaults: the shipped settings (agent interval 20 s, hysteresis 2,
#             Prometheus scrape and evaluation 15 s, group_wait 30 s);
#   tight:    agents every 2 s, hysteresis 2, Prometheus 1 s, group_wait 1 s.
#   tests/bench-detection.sh [REPEATS=3]
# Targets (defaults): metric within 30 s, alert within 90 s. Medians and
# worst of REPEATS runs each.
set -euo pipefail
# Needs root (network namespaces, raw sockets).
# Run by another user, it re-runs itself through sudo if sudo is installed
# (keeping PATH, which sudo resets, so that cargo is still found), and
# otherwise says how to run it.
if [ "$(id -u)" -ne 0 ]; then
  self=$(readlink -f "$0")
  if command -v sudo >/dev/null 2>&1; then
    echo "tests/bench-detection.sh: needs root (network namespaces, raw sockets): re-running through sudo" >&2
    if [ -z "${RUSTUP_HOME:-}" ] && [ -d "${HOME:-/nonexistent}/.rustup" ]; then
      export RUSTUP_HOME=$HOME/.rustup # this user's toolchains, should sudo reset HOME
    fi
    exec sudo -E env "PATH=$PATH" bash "$self" "$@"
  fi
  echo "tests/bench-detection.sh: needs root (network namespaces, raw sockets), and sudo is not installed: run it as root, e.g. su -c 'bash $self'" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
repeats=${1:-3}
cargo build -q -p tumen-agent -p tumen-collector -p tumen-lab
lab=target/debug/tumen-lab
declare -A metric alert
for mode in tight defaults; do
  flag=; [ "$mode" = defaults ] && flag=--defaults
  for r in $(seq 1 "$repeats"); do
    # The event waits a random part of an agent interval, so that runs
    # sample where in its round the change falls.
    after=$((20 + RANDOM % 20))
    out=$("$lab" demo --bench $flag --event-after "$after" 2>/dev/null | tail -1)
    m=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['metric_s'])" "$out")
    a=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['alert_s'])" "$out")
    echo "$mode run $r: metric ${m} s, alert ${a} s" >&2
    metric[$mode]+="$m "
    alert[$mode]+="$a "
  done
done
stat() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {printf "%6.1f %6.1f", a[int((NR+1)/2)], a[NR]}'; }
echo
echo "route change -> metric and -> alert at the webhook, $repeats runs each (median, worst), seconds:"
printf '  %-9s %-16s %-16s %s\n' "settings" "metric med/max" "alert med/max" "targets (defaults)"
for mode in tight defaults; do
  printf '  %-9s %-16s %-16s %s\n' "$mode" "$(stat "${metric[$mode]}")" "$(stat "${alert[$mode]}")" \
    "$([ "$mode" = defaults ] && echo 'metric < 30, alert < 90' || echo '-')"
done
