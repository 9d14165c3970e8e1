#!/usr/bin/env bash
# Side-by-side tracer benchmark on the `long-path` lab (13 hops, target
# 198.18.176.0/22 answered on every address): scamper, Linux traceroute and
# tumen-agent each trace all 1024 addresses from `vp` at one common packet
# rate cap, and the script prints, per tool, the probes counted on the wire
# (an nft counter in vp's output path), wall time, probes/s achieved, hop
# addresses found, and the border hop found for each /24. Needs root.
#   tests/bench-agent.sh [PPS] [REPS]      (defaults: 1000 1)
# With REPS > 1 each tool runs REPS times (interleaved) and the numbers are
# medians. A tumen-agent that does not build or fails is reported as such;
# the other two tools still run. TUMEN_BENCH_KEEP=1 keeps the raw outputs.
set -euo pipefail
# Needs root (network namespaces, raw sockets, nft).
# Run by another user, it re-runs itself through sudo if sudo is installed
# (keeping PATH, which sudo resets, so that cargo is still found), and
# otherwise says how to run it.
if [ "$(id -u)" -ne 0 ]; then
  self=$(readlink -f "$0")
  if command -v sudo >/dev/null 2>&1; then
    echo "tests/bench-agent.sh: needs root (network namespaces, raw sockets, nft): re-running through sudo" >&2
    if [ -z "${RUSTUP_HOME:-}" ] && [ -d "${HOME:-/nonexistent}/.rustup" ]; then
      export RUSTUP_HOME=$HOME/.rustup # this user's toolchains, should sudo reset HOME
    fi
    exec sudo -E env "PATH=$PATH" bash "$self" "$@"
  fi
  echo "tests/bench-agent.sh: needs root (network namespaces, raw sockets, nft), and sudo is not installed: run it as root, e.g. su -c 'bash $self'" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
pps=${1:-1000}
reps=${2:-1}
export LC_ALL=C
scenario=long-path
vp=vp
target=198.18.176.0/22

die() { echo "bench-agent: $*" >&2; exit 1; }
[[ $pps =~ ^[0-9]+$ ]] && (( pps >= 1 && pps <= 10000 )) || die "PPS must be 1..10000 (scamper's range), got $pps"
[[ $reps =~ ^[0-9]+$ ]] && (( reps >= 1 )) || die "REPS must be a positive integer, got $reps"
for tool in scamper traceroute nft python3 xargs; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y scamper traceroute nftables python3)"
done

# --- build (tumen-agent may not build yet: the other tools run anyway) -----
tdir=${CARGO_TARGET_DIR:-target}
agent_note=""
if ! cargo build --release -q -p tumen-agent -p tumen-lab; then
  agent_note="did not build"
  cargo build --release -q -p tumen-lab
fi
lab=$(realpath "$tdir/release/tumen-lab")
agent=$(realpath -m "$tdir/release/tumen-agent")
[[ -n $agent_note || -x $agent ]] || agent_note="binary missing"

# --- lab, torn down on any exit ---------------------------------------------
work=$(mktemp -d /tmp/tumen-bench-agent.XXXXXX)
id=""
cleanup() {
  local rc=$?
  if [[ -n $id ]]; then "$lab" down --lab "$id" >/dev/null 2>&1 || echo "bench-agent: could not remove lab $id" >&2; fi
  if [[ ${TUMEN_BENCH_KEEP:-0} == 1 ]]; then echo "raw outputs kept in $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
id=$("$lab" up "$scenario" 2>"$work/up.err") || { cat "$work/up.err" >&2; id=""; die "could not bring up $scenario"; }
vpx() { "$lab" exec --lab "$id" "$vp" -- "$@"; }

# Every probe toward the target leaves vp through its output hook (raw
# sockets included), where this counter sees it.
cat >"$work/counter.nft" <<EOF
table inet tumen_bench {
  counter probes { }
  chain out {
    type filter hook output priority 0; policy accept;
    ip daddr $target counter name "probes"
  }
}
EOF
vpx nft -f "$work/counter.nft"
counter_reset() { vpx nft reset counter inet tumen_bench probes >/dev/null; }
counter_read() {
  vpx nft -j list counter inet tumen_bench probes | python3 -c '
import json, sys
print(next(o["counter"]["packets"] for o in json.load(sys.stdin)["nftables"] if "counter" in o))'
}

python3 -c "import ipaddress; print(*ipaddress.ip_network('$target'), sep='\n')" >"$work/addrs"
naddrs=$(wc -l <"$work/addrs")
"$lab" asn-table "$scenario" >"$work/asn.dat"
hops=$("$lab" expect "$scenario" "$vp" 198.18.176.1 | wc -l)

# traceroute has no rate cap: run `par` processes at once, each probing one
# hop at a time (-N 1, one probe per hop -q 1, so it stops at the
# destination) with at least `z` seconds between its probes (-z). Its first
# probe is not delayed, so an H-hop trace has H-1 gaps: z = par/PPS * H/(H-1)
# keeps par processes at or below PPS together.
par=$(( (pps + 99) / 100 ))
if (( par > 64 )); then par=64; fi
z=$(python3 -c "print(f'{$par / $pps * $hops / ($hops - 1):.6f}')")

run_tool() { # NAME REP: runs one tool once, appends "name rep rc wire wall_ns" to runs
  local name=$1 rep=$2 out="$work/$1.$2" rc=0 t0 t1 wire
  counter_reset
  t0=$(date +%s%N)
  case $name in
    scamper)
      vpx scamper -p "$pps" -c "trace -P icmp-paris" -O json -o "$out" -f "$work/addrs" \
        2>"$out.err" || rc=$? ;;
    traceroute)
      mkdir -p "$out"
      vpx xargs -a "$work/addrs" -P "$par" -I{} \
        sh -c 'exec traceroute -I -n -q 1 -N 1 -z "$3" "$1" >"$2/$1" 2>&1' _ {} "$out" "$z" \
        2>"$out.err" || rc=$? ;;
    tumen-agent)
      vpx timeout $(( 60 + 30 * naddrs * hops / pps )) \
        "$agent" --once --allow-reserved --pps "$pps" --target "$target" --hosts all \
        >"$out" 2>"$out.err" || rc=$? ;;
  esac
  t1=$(date +%s%N)
  wire=$(counter_read)
  echo "$name $rep $rc $wire $(( t1 - t0 ))" >>"$work/runs"
}

tools=(scamper traceroute)
if [[ -z $agent_note ]]; then tools+=(tumen-agent); fi
echo "bench-agent: lab $id ($scenario, $hops hops from $vp), $naddrs addresses of $target," \
  "cap $pps pps, $reps run(s) of: ${tools[*]}" >&2
for rep in $(seq "$reps"); do
  for t in "${tools[@]}"; do
    echo "bench-agent: run $rep/$reps: $t" >&2
    run_tool "$t" "$rep"
  done
done

# --- report -------------------------------------------------------------------
python3 - "$work" "$target" "$pps" "$reps" "$hops" "$par" "$z" "$naddrs" "$agent_note" <<'PY'
import ipaddress, json, os, re, statistics, sys
from collections import Counter, defaultdict

work, target, pps, reps, hops, par, z, naddrs, agent_note = sys.argv[1:]
target = ipaddress.ip_network(target)
pps, reps, hops, par, naddrs = int(pps), int(reps), int(hops), int(par), int(naddrs)

# Lab ASN table: "inside the target" is the target prefix or any address of
# the target's AS (DESIGN.md: "a set of prefixes plus ASNs whose space is
# inside T"), so gw, numbered from the target's link space, is inside.
table = []
for line in open(os.path.join(work, "asn.dat")):
    if line.strip() and not line.startswith(";"):
        p, asn = line.split()
        table.append((ipaddress.ip_network(p), int(asn)))
def asn_of(a):
    best = None
    for net, asn in table:
        if a.version == net.version and a in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, asn)
    return best and best[1]
target_asn = asn_of(target.network_address)
def inside(a):
    return a in target or (target_asn is not None and asn_of(a) == target_asn)

def parse(tool, path):
    """-> (traces {dst: {ttl: [addr, ...]}}, probes the tool says it sent or None)"""
    traces, reported = {}, None
    if tool == "traceroute":
        for f in os.listdir(path):
            hops_ = {}
            for line in open(os.path.join(path, f)):
                m = re.match(r"\s*(\d+)\s+(.*)", line)
                if not m:
                    continue
                addrs = []
                for tok in m.group(2).split():
                    try:
                        addrs.append(ipaddress.ip_address(tok))
                    except ValueError:
                        pass  # `*`, RTTs, `ms`, `!X` annotations
                hops_[int(m.group(1))] = addrs
            traces[ipaddress.ip_address(f)] = hops_
        return traces, reported
    if not os.path.exists(path):
        return traces, reported
    for line in open(path):
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if tool == "scamper" and o.get("type") == "trace":
            hops_ = defaultdict(list)
            for h in o.get("hops", []):
                hops_[h["probe_ttl"]].append(ipaddress.ip_address(h["addr"]))
            traces[ipaddress.ip_address(o["dst"])] = dict(hops_)
            reported = (reported or 0) + o.get("probe_count", 0)
        elif tool == "tumen-agent" and o.get("kind") == "trace":
            hops_ = defaultdict(list)
            for h in o.get("hops", []):
                for r in h.get("replies") or []:
                    hops_[h["ttl"]].append(ipaddress.ip_address(r["addr"]))
            dst = ipaddress.ip_address(o["dst"])
            old = traces.setdefault(dst, {})
            for ttl, a in hops_.items():
                old.setdefault(ttl, []).extend(a)
            if "probes_sent" in o:
                reported = (reported or 0) + o["probes_sent"]
    return traces, reported

def border(hops_):
    """Last responding hop outside the target before the first inside; None if never entered."""
    last = None
    for ttl in sorted(hops_):
        addrs = hops_[ttl]
        if not addrs:
            continue
        if any(inside(a) for a in addrs):
            return last or "(none)"
        last = addrs[0]
    return None

runs = defaultdict(list)
for line in open(os.path.join(work, "runs")):
    tool, rep, rc, wire, wall_ns = line.split()
    traces, reported = parse(tool, os.path.join(work, f"{tool}.{rep}"))
    hop_addrs = {a for d, h in traces.items() for addrs in h.values() for a in addrs if a != d}
    reached = sum(1 for d, h in traces.items() if any(d in addrs for addrs in h.values()))
    per24 = defaultdict(Counter)
    for d, h in traces.items():
        b = border(h)
        if b is not None:
            per24[ipaddress.ip_network(f"{d}/24", strict=False)][str(b)] += 1
    runs[tool].append(dict(rc=int(rc), wire=int(wire), wall=int(wall_ns) / 1e9, reported=reported,
                           traces=len(traces), reached=reached, hop_addrs=len(hop_addrs), per24=per24,
                           err=os.path.join(work, f"{tool}.{rep}.err")))

def med(xs):
    return statistics.median(xs)

print(f"long-path: {naddrs} addresses of {target}, {hops} hops each from vp; cap {pps} pps; "
      + (f"median of {reps} runs" if reps > 1 else "1 run"))
print(f"  naive one-probe-per-hop cost: {naddrs} x {hops} = {naddrs * hops} probes, {naddrs * hops / pps:.2f} s at the cap")
print(f"  scamper:     -p {pps} -c 'trace -P icmp-paris' (defaults: -q 2 attempts per hop, -w 5 s wait, one hop at a time)")
print(f"  traceroute:  -I -n -q 1 -N 1 -z {z}, {par} in parallel (xargs -P {par}): no cap of its own; each process")
print(f"               waits >= {z} s between its probes, so {par} of them stay <= {pps} pps over a {hops}-hop trace")
print(f"  tumen-agent: --once --allow-reserved --pps {pps} --target {target} --hosts all"
      + (f"  [{agent_note}: not run]" if agent_note else ""))
print("  probes = packets to the target counted by nft in vp's output hook; tool says = the tool's own count\n")

hdr = f"{'tool':<12} {'status':<8} {'probes':>7} {'tool says':>9} {'per dst':>7} {'wall s':>7} {'probes/s':>8} {'traces':>6} {'reached':>7} {'hop addrs':>9}"
print(hdr)
print("-" * len(hdr))
order = ["scamper", "traceroute", "tumen-agent"]
for tool in order:
    rs = runs.get(tool)
    if not rs:
        if tool == "tumen-agent":
            print(f"{tool:<12} {agent_note or 'not run'}")
        continue
    bad = [r["rc"] for r in rs if r["rc"] != 0]
    status = "ok" if not bad else f"exit {bad[0]}"
    wire = med([r["wire"] for r in rs])
    wall = med([r["wall"] for r in rs])
    rate = med([r["wire"] / r["wall"] for r in rs])
    said = [r["reported"] for r in rs if r["reported"] is not None]
    said = f"{med(said):.0f}" if said else "-"
    print(f"{tool:<12} {status:<8} {wire:>7.0f} {said:>9} {wire / naddrs:>7.2f} {wall:>7.2f} {rate:>8.1f} "
          f"{med([r['traces'] for r in rs]):>6.0f} {med([r['reached'] for r in rs]):>7.0f} {med([r['hop_addrs'] for r in rs]):>9.0f}")

print("\nborder per /24 (last responding hop outside the target before the first hop inside;")
print(f"inside = {target} or the target's AS{target_asn} per the lab ASN table); n/m = found in n of m traces")
tools_ran = [t for t in order if t in runs]
nets = list(target.subnets(new_prefix=24))
cw = 22
print(f"{'/24':<18} " + " ".join(f"{t:<{cw}}" for t in tools_ran) + " agree")
for net in nets:
    cells, found = [], []
    for t in tools_ran:
        c = Counter()
        for r in runs[t]:
            c.update(r["per24"].get(net, Counter()))
        total = sum(c.values())
        if not total:
            cells.append("-")
            continue
        b, k = c.most_common(1)[0]
        found.append(b)
        per_run = net.num_addresses * len(runs[t])
        cells.append(b if k == per_run and len(c) == 1 else f"{b} {k}/{per_run}" + (" +more" if len(c) > 1 else ""))
    if len(set(found)) > 1:
        agree = "no"
    elif not found:
        agree = "-"
    else:
        agree = "yes" if len(found) == len(tools_ran) else f"yes ({len(found)} of {len(tools_ran)} tools)"
    print(f"{str(net):<18} " + " ".join(f"{c:<{cw}}" for c in cells) + f" {agree}")

for tool in order:
    for i, r in enumerate(runs.get(tool, [])):
        if r["rc"] != 0 or r["traces"] == 0:
            tail = open(r["err"], errors="replace").read().strip().splitlines()[-5:] if os.path.exists(r["err"]) else []
            print(f"\n{tool} run {i + 1}: exit {r['rc']}, {r['traces']} traces" + "".join(f"\n  | {l}" for l in tail))
PY
