#!/usr/bin/env bash
# Delivery load benchmark (issue 5): AGENTS simulated agents, each with its
# own token and its own HTTP keep-alive connection (as real agents), upload
# 100-trace gzip batches of realistic 12-hop traces to ONE release
# collector for SECONDS, open loop: together they offer RATE traces/s on a
# fixed schedule (each agent one batch every AGENTS*BATCH/RATE s, the
# agents' schedules spread over that interval), whatever the collector's
# answers; latency is measured from each batch's scheduled send time, so
# queueing cannot hide.
#   tests/bench-delivery-load.sh [SECONDS=60] [RATE=10000] [AGENTS=1000] [BATCH=100]
# Defaults: 1000 agents x one 100-trace batch every 10 s = 10,000 traces/s.
# The collector is pinned to CPU 0 (taskset -c 0; its runtime then sizes
# itself to one core), durable commits as in production; the load
# generator (collector/examples/ingest_load.rs) runs on the other CPU.
# Prints offered and achieved traces/s, p50/p99/max latency, errors, and
# the traces acknowledged (200) against the traces in the SQLite store:
# MATCH, or MISMATCH and exit status 1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
rate=${2:-10000}
agents=${3:-1000}
batch=${4:-100}
cargo build --release -q -p tumen-collector --bin tumen-collector --example ingest_load
bin=$PWD/target/release/tumen-collector
load=$PWD/target/release/examples/ingest_load
# One socket per agent on each side, and the store's files.
need=$((agents + 1024))
if [ "$(ulimit -n)" -lt "$need" ]; then
  ulimit -n "$need" || { echo "need ulimit -n >= $need for $agents connections" >&2; exit 1; }
fi
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
# Tokens: plain for the load generator, hashed for the collector.
python3 - "$agents" "$work" <<'EOF'
import hashlib, os, sys
n, work = int(sys.argv[1]), sys.argv[2]
with open(f"{work}/plain", "w") as p, open(f"{work}/tokens", "w") as h:
    for i in range(1, n + 1):
        tok = os.urandom(32).hex()
        p.write(f"vp-{i} {tok}\n")
        h.write(f"vp-{i} sha256:{hashlib.sha256(tok.encode()).hexdigest()}\n")
EOF
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
other=$(( $(nproc) > 1 ? 1 : 0 ))
taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --db "$work/c.db" \
  --token-file "$work/tokens" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/log" >&2; exit 1; }
hz=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
sync
c0=$(cpu)
taskset -c "$other" "$load" --url "http://127.0.0.1:$port" --tokens "$work/plain" \
  --uploaders "$agents" --batch "$batch" --seconds "$seconds" --rate "$rate" \
  --connections per-uploader >"$work/out" &
lpid=$!
# Most connections the collector held at once (sampled every second).
conns=0
while kill -0 "$lpid" 2>/dev/null; do
  n=$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)
  [ "$n" -gt "$conns" ] && conns=$n
  sleep 1
done
wait "$lpid"
c1=$(cpu)
out=$(cat "$work/out")
metrics=$(curl -sf "http://127.0.0.1:$port/metrics" || true)
rss=$(awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
# Stop the collector (SIGTERM: it finishes in-flight requests and its
# writer's queue) before counting what it stored.
kill -TERM "$pid"
wait "$pid" || { echo "collector exit status $?" >&2; tail -20 "$work/log" >&2; exit 1; }
pid=
stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from traces').fetchone()[0])" "$work/c.db")
sent=$(field "$out" traces)
accepted=$(field "$out" accepted)
dups=$(field "$out" duplicates)
offered=$(field "$out" offered_traces)
errors=$(python3 -c "import json,sys; e=json.loads(sys.argv[1])['errors']; print(', '.join(f'{k}: {v}' for k,v in e.items()) or 'none')" "$out")
cpu_s=$(python3 -c "print(($c1 - $c0) / $hz)")
# The collector is idle while the load generator builds its bodies: its
# CPU time is that of the run (wall_s, from the first scheduled batch).
cpu_pct=$(python3 -c "print(round(100 * $cpu_s / $(field "$out" wall_s), 1))")
per_cpu=$(python3 -c "print(round($stored / max($cpu_s, 1e-9)))")
mingest=$(printf '%s\n' "$metrics" | awk '/^tumen_collector_ingest_records_total\{kind="trace",outcome="accepted"\}/ {print $2}')
worst=$(python3 -c "import json,sys; print('; '.join(json.loads(sys.argv[1])['worst'][:5]))" "$out")
if [ "$stored" = "$sent" ] && [ "$accepted" = "$sent" ]; then verdict=MATCH; else verdict=MISMATCH; fi
echo
echo "delivery load: $agents agents (own token and connection each), $batch-trace gzip batches, open loop ${rate} traces/s for ${seconds} s;"
echo "collector pinned to CPU 0 (taskset -c 0), durable commit; load generator on CPU $other:"
printf '  %-44s %14s\n' "offered traces/s" "$rate"
printf '  %-44s %14s\n' "achieved traces/s (acknowledged 200)" "$(field "$out" traces_per_s)"
printf '  %-44s %14s\n' "requests answered 200" "$(field "$out" requests)"
printf '  %-44s %14s\n' "latency p50 ms" "$(python3 -c "print(round($(field "$out" p50_ms), 1))")"
printf '  %-44s %14s\n' "latency p99 ms" "$(python3 -c "print(round($(field "$out" p99_ms), 1))")"
printf '  %-44s %14s\n' "latency max ms" "$(python3 -c "print(round($(field "$out" max_ms), 1))")"
printf '  %-44s %14s\n' "errors" "$errors"
printf '  %-44s %14s\n' "batches not sent in time (late)" "$(field "$out" late_batches)"
printf '  %-44s %14s\n' "connections at the collector (most at once)" "$conns"
printf '  %-44s %14s\n' "collector CPU, % of one core" "$cpu_pct"
printf '  %-44s %14s\n' "collector traces per CPU-second" "$per_cpu"
printf '  %-44s %14s\n' "collector peak RSS MiB" "$rss"
printf '  %-44s %14s\n' "traces offered (scheduled in the window)" "$offered"
printf '  %-44s %14s\n' "traces sent (acknowledged 200)" "$sent"
printf '  %-44s %14s\n' "traces accepted in the answers (+duplicates)" "$accepted (+$dups)"
printf '  %-44s %14s\n' "traces accepted per collector /metrics" "${mingest:-?}"
printf '  %-44s %14s\n' "traces stored (SQLite)" "$stored"
printf '  %-44s %14s\n' "stored = sent" "$verdict"
echo "  worst latencies: $worst"
[ "$verdict" = MATCH ]
