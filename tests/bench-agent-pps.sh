#!/usr/bin/env bash
# Highest sustained probe rate on one core without wrong matches.
# In the dprk-2017 lab, one agent pinned to one CPU traces every address of
# five /24s with 16 Paris flows each (102,400 probes, windows off) at
# increasing rate caps. For each cap: probes counted on the wire (nft, in
# the vantage point), wall time, achieved rate, CPU, and wrong matches:
# there is no load balancing in dprk-2017, so every trace of a /24, on every
# flow, must show the same address at each TTL. Needs root.
#   tests/bench-agent-pps.sh [CAP...]     (default: 10000 20000 50000 100000)
set -euo pipefail
# Needs root (network namespaces, raw sockets, nft).
# Run by another user, it re-runs itself through sudo if sudo is installed
# (keeping PATH, which sudo resets, so that cargo is still found), and
# otherwise says how to run it.
if [ "$(id -u)" -ne 0 ]; then
  self=$(readlink -f "$0")
  if command -v sudo >/dev/null 2>&1; then
    echo "tests/bench-agent-pps.sh: needs root (network namespaces, raw sockets, nft): re-running through sudo" >&2
    if [ -z "${RUSTUP_HOME:-}" ] && [ -d "${HOME:-/nonexistent}/.rustup" ]; then
      export RUSTUP_HOME=$HOME/.rustup # this user's toolchains, should sudo reset HOME
    fi
    exec sudo -E env "PATH=$PATH" bash "$self" "$@"
  fi
  echo "tests/bench-agent-pps.sh: needs root (network namespaces, raw sockets, nft), and sudo is not installed: run it as root, e.g. su -c 'bash $self'" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
caps=("$@"); [ ${#caps[@]} -gt 0 ] || caps=(10000 20000 50000 100000)
cargo build --release -q -p tumen-agent -p tumen-lab
lab=target/release/tumen-lab
agent=$PWD/target/release/tumen-agent
id=$("$lab" up dprk-2017 2>/dev/null)
trap '"$lab" down --lab "$id" >/dev/null 2>&1 || true' EXIT
ns="$id-vp-fra"
ip netns exec "$ns" nft -f - <<'NFT'
table inet tumen_bench {
  counter probes {}
  chain out { type filter hook output priority 0; ip daddr { 198.18.176.0/22, 198.19.109.0/24, 198.19.35.0/24 } counter name probes; }
}
NFT
out=$(mktemp); err=$(mktemp)
printf '%-9s %9s %8s %10s %8s %9s %9s %7s\n' cap probes wall_s pps cpu_s matched unmatched wrong
for cap in "${caps[@]}"; do
  ip netns exec "$ns" nft reset counter inet tumen_bench probes >/dev/null
  t0=$(date +%s%N)
  /usr/bin/time -f '%U %S' -o "$err.time" ip netns exec "$ns" taskset -c 1 "$agent" --once \
    --allow-reserved --id bench --no-window --hosts all --flows 16 --pps "$cap" \
    --target 198.18.177.0/24 --target 198.18.178.0/23 --target 198.19.109.0/24 --target 198.19.35.0/24 \
    >"$out" 2>"$err"
  t1=$(date +%s%N)
  wire=$(ip netns exec "$ns" nft list counter inet tumen_bench probes | awk '/packets/ {print $2}')
  cpu=$(awk '{printf "%.2f", $1+$2}' "$err.time")
  matched=$(sed -nE 's/.* ([0-9]+) replies matched.*/\1/p' "$err")
  unmatched=$(sed -nE 's/.* ([0-9]+) unmatched.*/\1/p' "$err")
  wrong=$(python3 - "$out" <<'PY'
import json, sys, collections
seen = collections.defaultdict(lambda: collections.defaultdict(set))
for line in open(sys.argv[1]):
    r = json.loads(line)
    for h in r["hops"]:
        for x in h["replies"]:
            if x["addr"] != r["dst"]:
                seen[r["prefix"]][h["ttl"]].add(x["addr"])
# An address at a TTL that more than one router claims is a wrong match.
print(sum(len(a) - 1 for ttls in seen.values() for a in ttls.values() if len(a) > 1))
PY
)
  awk -v c="$cap" -v p="$wire" -v t0="$t0" -v t1="$t1" -v cpu="$cpu" -v m="$matched" -v u="$unmatched" -v w="$wrong" \
    'BEGIN {s=(t1-t0)/1e9; printf "%-9s %9d %8.2f %10.0f %8s %9s %9s %7s\n", c, p, s, p/s, cpu, m, u, w}'
done
rm -f "$out" "$err" "$err.time"
