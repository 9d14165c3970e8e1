#!/usr/bin/env bash
# Agent footprint at the default configuration: RSS and CPU of one agent
# probing the dprk-2017 lab's target set (the DPRK preset's shape: six
# units, IPv4 and IPv6) at the default rate and interval for DURATION
# seconds. Samples /proc every 5 s. Needs root.
#   tests/bench-agent-footprint.sh [DURATION]     (default 600)
set -euo pipefail
# Needs root (network namespaces, raw sockets).
# Run by another user, it re-runs itself through sudo if sudo is installed
# (keeping PATH, which sudo resets, so that cargo is still found), and
# otherwise says how to run it.
if [ "$(id -u)" -ne 0 ]; then
  self=$(readlink -f "$0")
  if command -v sudo >/dev/null 2>&1; then
    echo "tests/bench-agent-footprint.sh: needs root (network namespaces, raw sockets): re-running through sudo" >&2
    if [ -z "${RUSTUP_HOME:-}" ] && [ -d "${HOME:-/nonexistent}/.rustup" ]; then
      export RUSTUP_HOME=$HOME/.rustup # this user's toolchains, should sudo reset HOME
    fi
    exec sudo -E env "PATH=$PATH" bash "$self" "$@"
  fi
  echo "tests/bench-agent-footprint.sh: needs root (network namespaces, raw sockets), and sudo is not installed: run it as root, e.g. su -c 'bash $self'" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
duration=${1:-600}
cargo build --release -q -p tumen-agent -p tumen-lab
lab=target/release/tumen-lab
agent=$PWD/target/release/tumen-agent
id=$("$lab" up dprk-2017 2>/dev/null)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  "$lab" down --lab "$id" >/dev/null 2>&1 || true
}
trap cleanup EXIT
out=$(mktemp)
# The lab's stand-ins for the preset: 175.45.176.0/22 -> 198.18.176.0/22,
# KPTC -> 198.19.109.0/24, SatGate -> 198.19.35.0/24, plus IPv6.
ip netns exec "$id-vp-fra" "$agent" --allow-reserved --id vp-fra \
  --target 198.18.176.0/22 --target 198.19.109.0/24 --target 198.19.35.0/24 \
  --target 2001:db8:176::/47 >"$out" 2>/dev/null &
pid=$!
hz=$(getconf CLK_TCK)
rss=(); t0=$(date +%s)
sleep 1
while [ $(( $(date +%s) - t0 )) -lt "$duration" ]; do
  rss+=($(awk '/^VmRSS/ {print $2}' /proc/$pid/status))
  sleep 5
done
read -r utime stime < <(awk '{print $14, $15}' /proc/$pid/stat)
hwm=$(awk '/^VmHWM/ {print $2}' /proc/$pid/status)
caps=$(awk '/^CapEff/ {print $2}' /proc/$pid/status)
elapsed=$(( $(date +%s) - t0 ))
lines=$(wc -l <"$out")
median=$(printf '%s\n' "${rss[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "tumen-agent, default configuration (100 pps cap, 20 s interval, 1 host per unit), ${elapsed} s:"
echo "  RSS median ${median} KiB, peak (VmHWM) ${hwm} KiB over ${#rss[@]} samples"
awk -v u="$utime" -v s="$stime" -v hz="$hz" -v e="$elapsed" \
  'BEGIN {printf "  CPU %.2f s user + %.2f s system = %.3f%% of one core\n", u/hz, s/hz, 100*(u+s)/hz/e}'
echo "  records printed: $lines; effective capabilities while running: $caps"
rm -f "$out"
