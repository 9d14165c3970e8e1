#!/usr/bin/env bash
# Measures bringing a lab scenario up and tearing it down, N times, and
# prints the median and range of each (seconds). Needs root.
#   tests/bench-lab.sh [SCENARIO] [N]      (defaults: dprk-2017 20)
set -euo pipefail
# Needs root (network namespaces).
# Run by another user, it re-runs itself through sudo if sudo is installed
# (keeping PATH, which sudo resets, so that cargo is still found), and
# otherwise says how to run it.
if [ "$(id -u)" -ne 0 ]; then
  self=$(readlink -f "$0")
  if command -v sudo >/dev/null 2>&1; then
    echo "tests/bench-lab.sh: needs root (network namespaces): re-running through sudo" >&2
    if [ -z "${RUSTUP_HOME:-}" ] && [ -d "${HOME:-/nonexistent}/.rustup" ]; then
      export RUSTUP_HOME=$HOME/.rustup # this user's toolchains, should sudo reset HOME
    fi
    exec sudo -E env "PATH=$PATH" bash "$self" "$@"
  fi
  echo "tests/bench-lab.sh: needs root (network namespaces), and sudo is not installed: run it as root, e.g. su -c 'bash $self'" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
scenario=${1:-dprk-2017}
n=${2:-20}
cargo build --release -q -p tumen-lab
bin=target/release/tumen-lab
ups=(); downs=()
for _ in $(seq "$n"); do
  t0=$(date +%s%N)
  id=$("$bin" up "$scenario" 2>/dev/null)
  t1=$(date +%s%N)
  "$bin" down --lab "$id" >/dev/null 2>&1
  t2=$(date +%s%N)
  ups+=($(( (t1 - t0) / 1000 ))); downs+=($(( (t2 - t1) / 1000 )))
done
stats() { # microseconds -> "median X s (min Y, max Z)"
  sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2;
    printf "median %.3f s (min %.3f, max %.3f)", m/1e6, a[1]/1e6, a[NR]/1e6}'
}
nodes=$("$bin" check "$scenario" | sed -E 's/.*\(([0-9]+) nodes, ([0-9]+) links.*/\1 nodes, \2 links/')
echo "scenario $scenario ($nodes), $n runs, wall clock of the tumen-lab command:"
echo "  up:   $(printf '%s\n' "${ups[@]}" | stats)"
echo "  down: $(printf '%s\n' "${downs[@]}" | stats)"
