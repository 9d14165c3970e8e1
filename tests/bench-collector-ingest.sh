#!/usr/bin/env bash
# Collector ingest benchmark: traces/s through HTTP with durable commit
# (SQLite WAL, synchronous=FULL, group commit) on ONE core, and latency
# with 200 concurrent uploaders. The collector is pinned to CPU 0 with
# taskset (its runtime then sizes itself to one core); the load generator
# (collector/examples/ingest_load.rs) runs on the other CPU(s).
#   tests/bench-collector-ingest.sh [SECONDS] [REPEATS] [RATE]
# defaults: 10 s per run, 3 repeats, open-loop rate 20000 traces/s.
# Each repeat: (1) open loop at RATE traces/s offered by 200 uploaders
# (each a batch every 200*100/RATE s): latency from the scheduled send
# time; (2) closed loop, 200 uploaders x 100-trace gzip batches: maximum
# throughput and the collector's CPU per trace. Medians printed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
repeats=${2:-3}
rate=${3:-20000}
uploaders=200
batch=100
cargo build --release -q -p tumen-collector --bin tumen-collector --example ingest_load
bin=$PWD/target/release/tumen-collector
load=$PWD/target/release/examples/ingest_load
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
for i in $(seq 1 "$uploaders"); do
  tok=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
  echo "vp-$i $tok" >>"$work/plain"
  echo "vp-$i sha256:$(printf %s "$tok" | sha256sum | cut -d' ' -f1)" >>"$work/tokens"
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
other=$(( $(nproc) > 1 ? 1 : 0 ))
taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --db "$work/c.db" \
  --token-file "$work/tokens" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
hz=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
closed=(); percpu=(); cp99=(); op50=(); op99=(); orate=(); errs=(); late=()
for r in $(seq 1 "$repeats"); do
  # Open loop first, after a sync: a saturating run leaves hundreds of MB
  # of dirty pages whose writeback would slow this run's fsyncs.
  sync
  out=$(taskset -c "$other" "$load" --url "http://127.0.0.1:$port" --tokens "$work/plain" \
    --uploaders $uploaders --batch $batch --seconds "$seconds" --rate "$rate")
  orate+=("$(field "$out" traces_per_s)")
  op50+=("$(field "$out" p50_ms)")
  op99+=("$(field "$out" p99_ms)")
  late+=("$(field "$out" late_batches)")
  errs+=("$(field "$out" errors)")
  c0=$(cpu)
  out=$(taskset -c "$other" "$load" --url "http://127.0.0.1:$port" --tokens "$work/plain" \
    --uploaders $uploaders --batch $batch --seconds "$seconds" --rate 0)
  c1=$(cpu)
  tr=$(field "$out" traces)
  closed+=("$(field "$out" traces_per_s)")
  cp99+=("$(field "$out" p99_ms)")
  percpu+=("$(python3 -c "print($tr / max(($c1 - $c0) / $hz, 1e-9))")")
  errs+=("$(field "$out" errors)")
  echo "run $r: open at $rate/s: ${orate[-1]} traces/s, p50 ${op50[-1]} ms, p99 ${op99[-1]} ms; closed ${closed[-1]} traces/s (collector CPU: ${percpu[-1]} traces per CPU-second), p99 ${cp99[-1]} ms" >&2
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}'; }
stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from traces').fetchone()[0])" "$work/c.db")
echo
echo "collector ingest, one core (taskset -c 0), durable commit, $uploaders uploaders, $batch traces/batch (gzip), $repeats x ${seconds}s, medians:"
printf '  %-46s %12s %10s\n' "" "value" "target"
printf '  %-46s %12s %10s\n' "closed loop: traces/s ingested" "$(med "${closed[@]}")" ">= 20000"
printf '  %-46s %12s %10s\n' "closed loop: traces per collector CPU-second" "$(med "${percpu[@]}")" ">= 20000"
printf '  %-46s %12s %10s\n' "closed loop: p99 latency ms (saturated)" "$(med "${cp99[@]}")" "-"
printf '  %-46s %12s %10s\n' "open loop $rate/s offered: traces/s" "$(med "${orate[@]}")" "$rate"
printf '  %-46s %12s %10s\n' "open loop: p50 latency ms" "$(med "${op50[@]}")" "-"
printf '  %-46s %12s %10s\n' "open loop: p99 latency ms" "$(med "${op99[@]}")" "< 50"
echo "  errors per run: ${errs[*]}; open-loop batches not sent in time per run: ${late[*]}"
echo "  traces stored: $stored"
