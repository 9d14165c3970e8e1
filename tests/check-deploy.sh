#!/usr/bin/env bash
# Checks the static deployment material in deploy/ (Prometheus, Alertmanager,
# Grafana, systemd, cloud-init) without building or starting Tumen:
#   tests/check-deploy.sh
#
# Installs what it lacks (apt: prometheus for promtool, prometheus-alertmanager
# for amtool, python3-yaml, cloud-init; systemd-analyze comes with systemd),
# runs every check, prints a summary and exits 1 if any check failed (2 if
# the tools could not be installed).
#
# What it runs:
#   promtool check config / check rules; promtool test rules on every
#     deploy/prometheus/tests/*.yml; every alert has a firing and a quiet
#     case, every recording rule a test; rule and dashboard expressions name
#     only metrics the collector and agent export (or recorded ones)
#   amtool check-config; the severity routes; the inhibit rule, on a
#     throw-away Alertmanager bound to 127.0.0.1
#   the Grafana dashboard: valid JSON, structure, metric names, and every
#     PromQL expression parsed by promtool
#   systemd-analyze verify of both units (on copies whose ExecStart points
#     at a stub, see below) and systemd-analyze security --offline=yes
#     (exposure scores printed, fenced); the sysusers.d files
#   the example TOML configurations: every key exists in the agent's or the
#     collector's RawConfig (read from the Rust source), with its type
#   cloud-init: YAML, `cloud-init schema`, the staged agent.toml's keys, and
#     the install script (download, SHA-256, apt-get, configuration) run
#     against stubs
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
D=$ROOT/deploy
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# ------------------------------------------------------------------ tools
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v cloud-init >/dev/null 2>&1 || need+=(cloud-init)
"$PY" -c 'import yaml' >/dev/null 2>&1 || need+=(python3-yaml)
"$PY" -c 'import tomllib' >/dev/null 2>&1 || "$PY" -c 'import tomli' >/dev/null 2>&1 || need+=(python3-tomli)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    # Installing needs root: re-run through sudo if it is installed
    # (keeping PATH, which sudo resets), otherwise say how.
    if command -v sudo >/dev/null 2>&1; then
      echo "tests/check-deploy.sh: missing ${need[*]}; installing them needs root: re-running through sudo" >&2
      exec sudo -E env "PATH=$PATH" bash "$ROOT/tests/check-deploy.sh" "$@"
    fi
    echo "tests/check-deploy.sh: missing ${need[*]}, and sudo is not installed: run it as root to install them with apt-get, e.g. su -c 'bash $ROOT/tests/check-deploy.sh'" >&2
    exit 2
  fi
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >/tmp/check-deploy-apt.log 2>&1; then
    echo "tests/check-deploy.sh: apt-get install ${need[*]} failed (log: /tmp/check-deploy-apt.log)" >&2
    exit 2
  fi
  # The packages enable their daemons; this script only wants the tools.
  if [ -d /run/systemd/system ]; then
    for pkg in "${need[@]}"; do
      case $pkg in
        prometheus) systemctl disable --now prometheus.service >/dev/null 2>&1 || true ;;
        prometheus-alertmanager) systemctl disable --now prometheus-alertmanager.service >/dev/null 2>&1 || true ;;
      esac
    done
  fi
fi
AMBIN=$(command -v prometheus-alertmanager || command -v alertmanager || true)

TMP=$(mktemp -d /tmp/check-deploy.XXXXXX)
AM_PID=
cleanup() {
  if [ -n "$AM_PID" ]; then kill "$AM_PID" 2>/dev/null; wait "$AM_PID" 2>/dev/null; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# ------------------------------------------------------------------ harness
# shellcheck source=tests/lib/checks.sh
. "$ROOT/tests/lib/checks.sh"

# Metric names the material may use: the collector's and the agent's
# contract (docs/collector.md "Outputs", docs/agent.md "Delivery"), plus `up`.
KNOWN_METRICS="
tumen_path_upstream_info tumen_upstream_share_ratio tumen_prefix_reachable_ratio
tumen_upstream_changes_total tumen_agent_last_seen_timestamp_seconds
tumen_upstream_last_change_timestamp_seconds
tumen_collector_ingest_requests_total tumen_collector_ingest_rejected_total
tumen_collector_store_last_write_timestamp_seconds tumen_collector_store_write_errors_total
tumen_collector_agents tumen_collector_build_info
tumen_agent_spool_records tumen_agent_spool_oldest_unsent_seconds tumen_agent_spool_dropped_total
tumen_agent_upload_requests_total tumen_agent_rounds_total tumen_agent_schedule_refused_items
tumen_bgp_upstream_share_ratio tumen_bgp_visibility_ratio tumen_bgp_path_upstream_info
tumen_bgp_updates_total tumen_bgp_source_up tumen_bgp_last_update_timestamp_seconds
tumen_plane_divergence_info tumen_bgp_upstream_last_change_timestamp_seconds
tumen_bgp_peers tumen_bgp_faults_total
up"
export KNOWN_METRICS D ROOT TMP

# ------------------------------------------------------------------ Prometheus
check "promtool check config deploy/prometheus/prometheus.yml" \
  promtool check config "$D/prometheus/prometheus.yml"
check "promtool check rules (recording_rules.yml, alert_rules.yml)" \
  promtool check rules "$D/prometheus/recording_rules.yml" "$D/prometheus/alert_rules.yml"

optional_agent_job() {
  # The commented `tumen-agent` job, uncommented, is valid too.
  mkdir -p "$TMP/prom" && cp "$D"/prometheus/*rules.yml "$TMP/prom/" &&
    "$PY" - "$D/prometheus/prometheus.yml" "$TMP/prom/prometheus.yml" <<'EOF' &&
import sys
lines = open(sys.argv[1]).read().splitlines()
start = next(i for i, l in enumerate(lines) if l.startswith("  # - job_name: tumen-agent"))
out = lines[:start] + [l.replace("  # ", "  ", 1) if l.startswith("  # ") else l for l in lines[start:]]
open(sys.argv[2], "w").write("\n".join(out) + "\n")
EOF
    promtool check config "$TMP/prom/prometheus.yml" &&
    grep -q 'job_name: tumen-agent' "$TMP/prom/prometheus.yml"
}
check "promtool check config with the optional tumen-agent job uncommented" optional_agent_job

for t in "$D"/prometheus/tests/*.yml; do
  check "promtool test rules ${t#"$ROOT"/}" promtool test rules "$t"
done

rules_conventions() {
  "$PY" - <<'EOF'
import glob, os, re, sys, yaml
D = os.environ["D"]
known = set(os.environ["KNOWN_METRICS"].split())
problems = []
rec = yaml.safe_load(open(f"{D}/prometheus/recording_rules.yml"))
alr = yaml.safe_load(open(f"{D}/prometheus/alert_rules.yml"))
recorded = [r["record"] for g in rec["groups"] for r in g["rules"]]
alerts = [r for g in alr["groups"] for r in g["rules"]]
names = known | set(recorded)
def metrics_in(expr):
    return set(re.findall(r"\b(?:[a-z_]+:)?tumen_[a-z0-9_]+(?::[a-z0-9_]+)?\b|\bup\b(?=\s*\{)", expr))
for r in recorded:
    if not re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", r):
        problems.append(f"recording rule {r}: not level:metric:operations")
for g in rec["groups"] + alr["groups"]:
    for r in g["rules"]:
        for m in metrics_in(r["expr"]):
            if m not in names:
                problems.append(f"{r.get('record') or r.get('alert')}: unknown metric {m}")
fired, quiet, tested_exprs = {}, set(), []
for path in sorted(glob.glob(f"{D}/prometheus/tests/*.yml")):
    for t in yaml.safe_load(open(path))["tests"]:
        for a in t.get("alert_rule_test", []):
            exp = a.get("exp_alerts") or []
            if exp:
                fired.setdefault(a["alertname"], []).extend(exp)
            else:
                quiet.add(a["alertname"])
        tested_exprs += [e["expr"] for e in t.get("promql_expr_test", [])]
for r in alerts:
    n = r["alert"]
    if not re.fullmatch(r"Tumen[A-Z][A-Za-z0-9]*", n):
        problems.append(f"{n}: not CamelCase with the prefix Tumen")
    if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
        problems.append(f"{n}: severity must be critical, warning or info")
    if not {"summary", "description"} <= set(r.get("annotations", {})):
        problems.append(f"{n}: needs summary and description annotations")
    if "for" not in r:
        problems.append(f"{n}: no explicit for:")
    if n not in fired:
        problems.append(f"{n}: no test case where it fires")
    if n not in quiet:
        problems.append(f"{n}: no test case where it stays quiet (exp_alerts: [])")
    for e in fired.get(n, []):
        if not e.get("exp_labels") or not e.get("exp_annotations"):
            problems.append(f"{n}: a firing case without exp_labels and exp_annotations")
for e in fired.get("TumenUpstreamChanged", []):
    if not {"agent", "prefix", "from", "to"} <= set(e["exp_labels"]):
        problems.append("TumenUpstreamChanged: tests must show the agent, prefix, from and to labels")
for r in recorded:
    if not any(r in e for e in tested_exprs):
        problems.append(f"recording rule {r}: no promql_expr_test")
for p in problems:
    print(p)
print(f"{len(alerts)} alerts, {len(recorded)} recording rules checked")
sys.exit(1 if problems else 0)
EOF
}
check "every alert fires and stays quiet in a test; conventions; metric names" rules_conventions

contract_in_source() {
  # The metric names above are exported by the Rust code (skipped when the
  # deploy folder is checked alone, without the sources).
  [ -d "$ROOT/collector/src" ] && [ -d "$ROOT/agent/src" ] || { echo "no sources: skipped"; return 0; }
  local m missing=0
  for m in $KNOWN_METRICS; do
    [ "$m" = up ] && continue
    grep -rqF "\"$m" "$ROOT/collector/src" "$ROOT/agent/src" || { echo "not in collector/src or agent/src: $m"; missing=1; }
  done
  return $missing
}
check "every metric name used is exported by the collector or agent source" contract_in_source

# ------------------------------------------------------------------ Alertmanager
AM=$D/alertmanager/alertmanager.yml
check "amtool check-config deploy/alertmanager/alertmanager.yml" amtool check-config "$AM"
routes() {
  amtool config routes test --config.file="$AM" --verify.receivers=tumen-critical severity=critical alertname=TumenPrefixUnreachable prefix=175.45.176.0/24 &&
    amtool config routes test --config.file="$AM" --verify.receivers=tumen-warning severity=warning alertname=TumenUpstreamChanged &&
    amtool config routes test --config.file="$AM" --verify.receivers=null severity=info alertname=TumenAgentScheduleRefused &&
    amtool config routes test --config.file="$AM" --verify.receivers=tumen-warning alertname=Unlabelled
}
check "alertmanager routes: critical, warning, info -> null, default" routes

inhibition() {
  # A throw-away Alertmanager on 127.0.0.1 (no cluster, temporary storage):
  # with TumenCollectorDown firing, the other Tumen alerts are suppressed.
  [ -n "$AMBIN" ] || { echo "no alertmanager binary"; return 1; }
  local port
  port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$TMP/am"
  "$AMBIN" --config.file="$AM" --storage.path="$TMP/am" --web.listen-address="127.0.0.1:$port" \
    --cluster.listen-address= >"$TMP/am/log" 2>&1 &
  AM_PID=$!
  local url=http://127.0.0.1:$port i
  for i in $(seq 50); do
    amtool --alertmanager.url="$url" alert query >/dev/null 2>&1 && break
    sleep 0.1
  done
  amtool --alertmanager.url="$url" alert add TumenAgentSilent agent=vp-fra severity=warning &&
    amtool --alertmanager.url="$url" alert add TumenUpstreamChanged agent=vp-fra prefix=175.45.177.0/24 from=china-unicom to=transtelecom severity=warning &&
    amtool --alertmanager.url="$url" alert add TumenCollectorDown job=tumen-collector instance=127.0.0.1:9640 severity=critical || return 1
  local active=""
  for i in $(seq 30); do
    active=$(amtool --alertmanager.url="$url" alert query -o simple 2>&1 | awk 'NR > 1 {print $1}' | sort | tr '\n' ' ')
    [ "$active" = "TumenCollectorDown " ] && break
    sleep 0.2
  done
  kill "$AM_PID" 2>/dev/null
  wait "$AM_PID" 2>/dev/null
  AM_PID=
  echo "active (not inhibited): $active"
  [ "$active" = "TumenCollectorDown " ]
}
check "alertmanager inhibition: TumenCollectorDown mutes the other alerts" inhibition

# ------------------------------------------------------------------ Grafana
DASH=$D/grafana/dashboards/tumen.json
check "dashboard is valid JSON (python3 -m json.tool)" "$PY" -m json.tool "$DASH" /dev/null
check "grafana provisioning files are YAML" "$PY" -c '
import sys, yaml
ds = yaml.safe_load(open(sys.argv[1])); pr = yaml.safe_load(open(sys.argv[2]))
assert ds["datasources"][0]["type"] == "prometheus", "datasource type"
assert pr["providers"][0]["type"] == "file" and pr["providers"][0]["options"]["path"], "provider"
' "$D/grafana/provisioning/datasources/tumen.yml" "$D/grafana/provisioning/dashboards/tumen.yml"

dashboard() {
  "$PY" - "$DASH" "$TMP/dashboard-exprs.yml" <<'EOF' && promtool check rules "$TMP/dashboard-exprs.yml"
import json, os, re, sys, yaml
D = os.environ["D"]
d = json.load(open(sys.argv[1]))
known = set(os.environ["KNOWN_METRICS"].split())
rec = yaml.safe_load(open(f"{D}/prometheus/recording_rules.yml"))
known |= {r["record"] for g in rec["groups"] for r in g["rules"]}
problems = []
def need(cond, what):
    if not cond:
        problems.append(what)
need(d.get("uid") == "tumen", "uid must be tumen")
need(36 <= d.get("schemaVersion", 0) <= 41, "schemaVersion")
vars_ = {v["name"]: v for v in d["templating"]["list"]}
need("prefix" in vars_ and vars_["prefix"]["type"] == "query", "a query variable `prefix`")
need("datasource" in vars_ and vars_["datasource"]["type"] == "datasource", "a datasource variable")
panels = []
for p in d["panels"]:
    panels.append(p)
    panels.extend(p.get("panels", []))
ids = [p["id"] for p in panels]
need(len(ids) == len(set(ids)), "panel ids must be unique")
exprs = []  # (where, expr)
rects = []
for p in panels:
    g = p.get("gridPos", {})
    need({"h", "w", "x", "y"} <= set(g) and g["x"] + g["w"] <= 24, f"panel {p['id']}: gridPos")
    rects.append((p["id"], g["x"], g["y"], g["w"], g["h"]))
    if p["type"] == "row":
        continue
    need(p.get("datasource", {}).get("uid") == "${datasource}", f"panel {p['title']}: datasource")
    need(p.get("targets"), f"panel {p['title']}: no targets")
    for t in p.get("targets", []):
        exprs.append((f"panel {p['title']!r} {t['refId']}", t["expr"]))
for i, (a, ax, ay, aw, ah) in enumerate(rects):
    for b, bx, by, bw, bh in rects[i + 1:]:
        need(ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, f"panels {a} and {b} overlap")
ann = [a for a in d["annotations"]["list"] if a.get("expr")]
need(ann, "an annotation query")
for a in ann:
    exprs.append((f"annotation {a['name']!r}", a["expr"]))
need(any("tumen_upstream_changes_total" in e or "tumen_upstream_last_change_timestamp_seconds" in e
         for _, e in exprs if _.startswith("annotation")), "annotation on upstream changes")
types = {p["type"] for p in panels}
need({"timeseries", "table", "stat"} <= types, "timeseries, table and stat panels")
need(any(p["type"] == "timeseries" and "tumen_upstream_share_ratio" in json.dumps(p.get("targets"))
         and p["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal" for p in panels),
     "a stacked timeseries of shares")
need(any(p["type"] == "table" and "tumen_path_upstream_info" in json.dumps(p.get("targets")) for p in panels),
     "a table of tumen_path_upstream_info")
need(any("tumen_prefix_reachable_ratio" in e for _, e in exprs), "reachability")
need(any("tumen_agent_spool" in e for _, e in exprs) and any("tumen_agent_upload_requests_total" in e for _, e in exprs),
     "agent spool and upload panels")
rules = []
for n, (where, e) in enumerate(exprs):
    names = set(re.findall(r"\b(?:[a-z_]+:)?tumen_[a-z0-9_]+(?::[a-z0-9_]+)?\b|\bup\b(?=\s*\{)", e))
    need(names, f"{where}: names no metric")
    for m in names - known:
        problems.append(f"{where}: unknown metric {m}")
    # Grafana's variables, as Grafana would expand them, for promtool to parse.
    q = (e.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$__range", "1h")
          .replace("$prefix", ".+").replace("${prefix}", ".+"))
    need("$" not in q, f"{where}: unexpanded variable in {q}")
    rules.append({"record": f"dashboard_expr_{n}", "expr": q})
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
for p in problems:
    print(p)
print(f"{len(panels)} panels, {len(exprs)} expressions")
sys.exit(1 if problems else 0)
EOF
}
check "dashboard: structure, known metric names, every expression parses (promtool)" dashboard

# ------------------------------------------------------------------ systemd
# `systemd-analyze verify` fails when ExecStart's binary is missing, and on a
# machine that checks (rather than runs) Tumen it is. Installing a stub at
# /usr/bin would change the system and could later shadow the real
# binary, so the units are verified as temporary copies whose ExecStart
# points at a stub in $TMP; everything else in them is verbatim.
# (--man=no: the Documentation= man pages come with the packages;
# tests/check-packages.sh verifies the installed units with them.)
mkdir -p "$TMP/units/bin"
for u in tumen-agent tumen-collector; do
  printf '#!/bin/sh\nexit 0\n' >"$TMP/units/bin/$u"
  chmod 0755 "$TMP/units/bin/$u"
  sed "s#^ExecStart=/usr/bin/$u #ExecStart=$TMP/units/bin/$u #" "$D/systemd/$u.service" >"$TMP/units/$u.service"
done
verify() {
  local u=$1 out rc
  grep -q "^ExecStart=$TMP/units/bin/$u " "$TMP/units/$u.service" || { echo "ExecStart not found"; return 1; }
  out=$(cd "$TMP/units" && systemd-analyze verify --man=no "$TMP/units/$u.service" 2>&1)
  rc=$?
  printf '%s\n' "$out"
  # verify exits 0 on unknown keys and bad values, which it only logs
  [ $rc -eq 0 ] && ! printf '%s\n' "$out" | grep -q 'tumen-'
}
declare -A EXPOSURE FENCE=([tumen-agent]=18 [tumen-collector]=13)
security() {
  local u=$1 out
  out=$(systemd-analyze security --offline=yes --threshold="${FENCE[$u]}" "$TMP/units/$u.service" 2>&1)
  local rc=$?
  printf '%s\n' "$out" | grep -E '^✗|Overall'
  return $rc
}
for u in tumen-agent tumen-collector; do
  check "systemd-analyze verify deploy/systemd/$u.service" verify "$u"
  EXPOSURE[$u]=$(systemd-analyze security --offline=yes "$TMP/units/$u.service" 2>/dev/null |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) \(.*\)/\1 \2/p')
  check "systemd-analyze security --offline=yes $u.service: ${EXPOSURE[$u]:-?} (fence $(printf '%d.%d' $((FENCE[$u] / 10)) $((FENCE[$u] % 10))))" security "$u"
done
hardening() {
  local a=$D/systemd/tumen-agent.service c=$D/systemd/tumen-collector.service k missing=0
  for k in AmbientCapabilities=CAP_NET_RAW CapabilityBoundingSet=CAP_NET_RAW StateDirectory=tumen-agent \
           "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK" KillSignal=SIGTERM \
           "ExecStart=/usr/bin/tumen-agent --config /etc/tumen-agent/agent.toml"; do
    grep -qxF "$k" "$a" || { echo "tumen-agent.service: no $k"; missing=1; }
  done
  for k in CapabilityBoundingSet= AmbientCapabilities= StateDirectory=tumen-collector KillSignal=SIGTERM; do
    grep -qxF "$k" "$c" || { echo "tumen-collector.service: no $k"; missing=1; }
  done
  grep -q '^ExecStart=/usr/bin/tumen-collector serve --config /etc/tumen-collector/collector.toml --db /var/lib/tumen-collector/' "$c" ||
    { echo "tumen-collector.service: ExecStart"; missing=1; }
  for f in "$a" "$c"; do
    for k in ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes NoNewPrivileges=yes \
             SystemCallFilter=@system-service SystemCallArchitectures=native MemoryDenyWriteExecute=yes \
             LockPersonality=yes RestrictNamespaces=yes RestrictRealtime=yes ProtectKernelTunables=yes \
             ProtectKernelModules=yes ProtectKernelLogs=yes ProtectControlGroups=yes ProtectClock=yes \
             ProtectHostname=yes UMask=0077 Restart=on-failure; do
      grep -qxF "$k" "$f" || { echo "$(basename "$f"): no $k"; missing=1; }
    done
  done
  # TimeoutStopSec above the agent's shutdown_grace (agent.toml.example)
  local grace stop
  grace=$(sed -n 's/^shutdown_grace = "\([0-9]*\)s"/\1/p' "$D/systemd/agent.toml.example")
  stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$a")
  [ -n "$grace" ] && [ -n "$stop" ] && [ "$stop" -gt $((grace + 5)) ] ||
    { echo "TimeoutStopSec ($stop) must exceed shutdown_grace ($grace) by more than 5s"; missing=1; }
  return $missing
}
check "units carry the required hardening settings" hardening
sysusers() {
  mkdir -p "$TMP/sysroot/etc" &&
    systemd-sysusers --root="$TMP/sysroot" "$D/systemd/sysusers.d/tumen-agent.conf" "$D/systemd/sysusers.d/tumen-collector.conf" &&
    grep -q '^tumen-agent:' "$TMP/sysroot/etc/passwd" && grep -q '^tumen-collector:' "$TMP/sysroot/etc/passwd"
}
check "sysusers.d files create tumen-agent and tumen-collector (systemd-sysusers --root)" sysusers

toml_keys() {
  "$PY" - <<'EOF'
import os, re, sys
try:
    import tomllib
except ImportError:
    import tomli as tomllib
D, ROOT = os.environ["D"], os.environ["ROOT"]
if not os.path.isdir(f"{ROOT}/agent/src"):
    print("no sources: skipped"); sys.exit(0)
def fields(path, struct):
    src = open(path).read()
    body = re.search(r"pub struct %s \{(.*?)\n\}" % struct, src, re.S).group(1)
    return dict(re.findall(r"^\s*pub (\w+): ([^\n]+),$", body, re.M))
def kind(rust):
    if rust.startswith("Vec<"): return list
    if re.match(r"(BTreeMap|HashMap)<", rust): return dict
    if "String" in rust or "PathBuf" in rust: return str
    if "bool" in rust: return bool
    if re.search(r"\b(u8|u16|u32|u64|usize)\b", rust): return int
    return dict
def uncomment(text):
    # Commented examples (`# key = value`, `# [table]`) must be valid too.
    return "\n".join(l[2:] if re.match(r"# (\[[a-z_.-]+\]$|[a-z_]+ = )", l) else l for l in text.splitlines())
problems = []
def check(where, table, schema, sub=None):
    for k, v in table.items():
        if k not in schema:
            problems.append(f"{where}: unknown key {k}")
            continue
        want = kind(schema[k])
        if want is dict and sub and k in sub:
            check(f"{where}.{k}", v, *sub[k])
        elif not isinstance(v, want) or (want is int and isinstance(v, bool)):
            problems.append(f"{where}: {k} = {v!r} is not {want.__name__} ({schema[k]})")
agent = fields(f"{ROOT}/agent/src/config.rs", "RawConfig")
coll = fields(f"{ROOT}/collector/src/serve/config.rs", "RawConfig")
dns = fields(f"{ROOT}/collector/src/serve/config.rs", "RawDns")
bgp = fields(f"{ROOT}/collector/src/serve/config.rs", "RawBgp")
sched = fields(f"{ROOT}/collector/src/serve/schedule.rs", "RawSchedule")
dur = re.compile(r"\d+(ms|s|m|h)")
for variant, text in [("", None), (" (comments uncommented)", uncomment)]:
    a = open(f"{D}/systemd/agent.toml.example").read()
    c = open(f"{D}/systemd/collector.toml.example").read()
    if text:
        a, c = text(a), text(c)
    a, c = tomllib.loads(a), tomllib.loads(c)
    check("agent.toml.example" + variant, a, agent)
    agents = {k: v for k, v in c.get("schedule", {}).get("agents", {}).items()}
    check("collector.toml.example" + variant, c, coll,
          {"dns": (dns,), "bgp": (bgp,), "schedule": (sched, {"agents": ({n: "RawSchedule" for n in agents},
                                                          {n: (sched,) for n in agents})})})
    for k in ("interval", "wait", "retry_max", "shutdown_grace", "ping_interval"):
        if k in a and not dur.fullmatch(a[k]):
            problems.append(f"agent.toml.example: {k} = {a[k]!r} is not a duration like 60s")
    if "spool_max" in a and not re.fullmatch(r"\d+(KiB|MiB|GiB|k|M|G|MB|GB|KB)?", a["spool_max"]):
        problems.append(f"agent.toml.example: spool_max = {a['spool_max']!r}")
    for k in ("retention", "agent_silence"):
        if k in c and not re.fullmatch(r"\d+[smhd]?", c[k]):
            problems.append(f"collector.toml.example: {k} = {c[k]!r} is not a duration like 10m")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
EOF
}
check "agent.toml.example / collector.toml.example: keys and types of RawConfig" toml_keys

# ------------------------------------------------------------------ cloud-init
CI=$D/cloud-init/agent-user-data.yml
check "cloud-init user data: #cloud-config, YAML, staged files, agent.toml keys" "$PY" - "$CI" "$ROOT" <<'EOF'
import re, sys, yaml
try:
    import tomllib
except ImportError:
    import tomli as tomllib
ci, ROOT = sys.argv[1:]
text = open(ci).read()
assert text.startswith("#cloud-config\n"), "first line must be #cloud-config"
d = yaml.safe_load(text)
files = {w["path"]: w for w in d["write_files"]}
S = "/etc/tumen-agent-install"
for path in (f"{S}/install.env", f"{S}/agent.toml", f"{S}/token", "/usr/local/sbin/tumen-agent-install"):
    assert path in files, f"{path} is not written"
assert list(files)[0] == f"{S}/install.env", "the URL and SHA-256 come first"
# The package brings the unit, the user and /etc/tumen-agent/agent.toml (a
# conffile): nothing of them is written before it is installed.
for path in files:
    assert not path.startswith(("/etc/tumen-agent/", "/etc/systemd/", "/etc/sysusers.d/", "/lib/", "/usr/lib/")), \
        f"{path}: the package ships it, or dpkg would ask about it"
env = files[f"{S}/install.env"]["content"]
assert "TUMEN_AGENT_DEB_URL=https://" in env and "TUMEN_AGENT_DEB_SHA256=" in env, env
assert files[f"{S}/token"]["permissions"] == "0600"
assert d["runcmd"] == [["/usr/local/sbin/tumen-agent-install"]], d["runcmd"]
# agent.toml, placeholders filled in: TOML whose keys are the agent's
# RawConfig fields (agent/src/config.rs), with a target, a collector and
# the token file the package makes.
a = tomllib.loads(files[f"{S}/agent.toml"]["content"].replace("REPLACE_", ""))
src = open(f"{ROOT}/agent/src/config.rs").read()
body = re.search(r"pub struct RawConfig \{(.*?)\n\}", src, re.S).group(1)
fields = dict(re.findall(r"^\s*pub (\w+): ([^\n]+),$", body, re.M))
unknown = [k for k in a if k not in fields]
assert not unknown, f"agent.toml: keys not in RawConfig: {unknown}"
for k, v in a.items():
    t = fields[k]
    want = list if t.startswith("Vec<") else bool if "bool" in t else str if ("String" in t or "PathBuf" in t) else int
    assert isinstance(v, want) and not (want is int and isinstance(v, bool)), f"agent.toml: {k} = {v!r} is not {want.__name__}"
assert a.get("preset") == "dprk" or a.get("targets"), "agent.toml: no target"
assert a["collector"].startswith("https://") and a["token_file"] == "/etc/tumen-agent/token", a
print("write_files:", ", ".join(files), "; agent.toml keys:", ", ".join(a))
EOF
check "cloud-init schema --config-file deploy/cloud-init/agent-user-data.yml" \
  cloud-init schema --config-file "$CI"

install_script() {
  # The install script of the user data, on a fake root: curl, apt-get,
  # systemctl and install are stubs that log what they are asked (apt-get
  # lays out what the package would: the binary, the example agent.toml,
  # an empty token); nothing is downloaded, installed, created or started.
  local R=$TMP/ci stub=$TMP/ci/stub
  run() {  # the staged files already in place
    rm -f "$R/log"
    PATH=$stub:$PATH FAKE_DEB=$R/fake.deb ROOTDIR=$R LOG=$R/log sh "$R/install.sh" >"$R/out" 2>&1
  }
  stage() {  # the user data's staged files, as shipped
    rm -rf "$R/etc" "$R/usr" && mkdir -p "$R/etc/tumen-agent-install" "$R/usr/bin" &&
      cp "$TMP/staged/"* "$R/etc/tumen-agent-install/"
  }
  rm -rf "$R" && mkdir -p "$R" "$stub" "$TMP/staged"
  printf 'not really a .deb\n' >"$R/fake.deb"
  cat >"$stub/curl" <<'EOF'
#!/bin/sh
echo "curl $*" >>"$LOG"
while [ $# -gt 0 ]; do [ "$1" = --output ] && out=$2; shift; done
cp "$FAKE_DEB" "$out"
EOF
  cat >"$stub/apt-get" <<'EOF'
#!/bin/sh
echo "apt-get $*" >>"$LOG"
for a; do deb=$a; done
cmp -s "$deb" "$FAKE_DEB" || { echo "apt-get: not the downloaded file: $deb" >&2; exit 100; }
mkdir -p "$ROOTDIR/etc/tumen-agent" "$ROOTDIR/usr/bin"
printf '#!/bin/sh\n' >"$ROOTDIR/usr/bin/tumen-agent"
[ -e "$ROOTDIR/etc/tumen-agent/agent.toml" ] || printf 'id = "REPLACE_vp-name"\n' >"$ROOTDIR/etc/tumen-agent/agent.toml"
[ -e "$ROOTDIR/etc/tumen-agent/token" ] || : >"$ROOTDIR/etc/tumen-agent/token"
EOF
  printf '#!/bin/sh\necho "systemctl $*" >>"$LOG"\n' >"$stub/systemctl"
  cat >"$stub/install" <<'EOF'
#!/bin/sh
echo "install $*" >>"$LOG"
for a; do src=$dst; dst=$a; done
cp "$src" "$dst"
EOF
  chmod 0755 "$stub"/*
  "$PY" - "$CI" "$TMP/staged" "$TMP/install.sh" <<'EOF' || return 1
import os, sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
for w in d["write_files"]:
    if w["path"].startswith("/etc/tumen-agent-install/"):
        open(os.path.join(sys.argv[2], os.path.basename(w["path"])), "w").write(w["content"])
    if w["path"] == "/usr/local/sbin/tumen-agent-install":
        open(sys.argv[3], "w").write(w["content"])
EOF
  sh -n "$TMP/install.sh" || return 1
  sed -e "s#/etc/#$R/etc/#g" "$TMP/install.sh" >"$R/install.sh"
  local sha env=$R/etc/tumen-agent-install/install.env
  sha=$(sha256sum "$R/fake.deb" | cut -d' ' -f1)
  # 1. as shipped: placeholders everywhere: nothing downloaded
  stage
  if run; then echo "as shipped: exited 0"; return 1; fi
  ! grep -q 'curl\|apt-get' "$R/log" 2>/dev/null || { echo "as shipped: downloaded or installed"; cat "$R/log"; return 1; }
  grep -q 'placeholders left in .*install.env; nothing downloaded' "$R/out" || { cat "$R/out"; return 1; }
  # 2. URL set, wrong SHA-256: downloaded, refused, not installed
  printf 'TUMEN_AGENT_DEB_URL=https://downloads.example.org/tumen-agent_0.1.0-1_amd64.deb\nTUMEN_AGENT_DEB_SHA256=%s\n' \
    "$(printf '%064d' 0)" >"$env"
  if run; then echo "wrong sha256: exited 0"; return 1; fi
  grep -q '^curl ' "$R/log" && ! grep -q apt-get "$R/log" || { echo "wrong sha256:"; cat "$R/log"; return 1; }
  grep -q 'does not have SHA-256' "$R/out" || { cat "$R/out"; return 1; }
  # 3. right SHA-256, agent.toml and token still with placeholders: the
  #    package installed (confold), nothing configured, not enabled
  printf 'TUMEN_AGENT_DEB_URL=https://downloads.example.org/tumen-agent_0.1.0-1_amd64.deb\nTUMEN_AGENT_DEB_SHA256=%s\n' "$sha" >"$env"
  if run; then echo "placeholders: exited 0"; return 1; fi
  grep -q '^apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold /.*\.deb$' "$R/log" ||
    { echo "placeholders: not installed with apt-get"; cat "$R/log" "$R/out"; return 1; }
  ! grep -q 'systemctl enable\|^install ' "$R/log" || { echo "placeholders: configured or enabled"; cat "$R/log"; return 1; }
  [ -f "$R/etc/tumen-agent-install/token" ] || { echo "placeholders: staged token gone"; return 1; }
  # 4. everything filled in: installed, then agent.toml and the token moved
  #    into /etc/tumen-agent/ (token group tumen-agent, 0640), enabled, started
  # (as a user would: the values only; the script greps for REPLACE_, so
  # no comment may name it)
  sed -i -e 's/= "REPLACE_/= "/' -e 's#https://REPLACE_#https://#' "$R/etc/tumen-agent-install/agent.toml"
  ! grep -n REPLACE_ "$R/etc/tumen-agent-install/agent.toml" || { echo "REPLACE_ left after filling in the values"; return 1; }
  echo 0123456789abcdef >"$R/etc/tumen-agent-install/token"
  run || { echo "filled in: failed"; cat "$R/out"; return 1; }
  grep -q "^install -m 0644 -o root -g root $R/etc/tumen-agent-install/agent.toml $R/etc/tumen-agent/agent.toml" "$R/log" &&
    grep -q "^install -m 0640 -o root -g tumen-agent $R/etc/tumen-agent-install/token $R/etc/tumen-agent/token" "$R/log" &&
    grep -q 'systemctl enable tumen-agent.service' "$R/log" && grep -q 'systemctl restart tumen-agent.service' "$R/log" &&
    [ "$(cat "$R/etc/tumen-agent/token")" = 0123456789abcdef ] && grep -q '^preset = "dprk"' "$R/etc/tumen-agent/agent.toml" ||
    { echo "filled in:"; cat "$R/log"; return 1; }
  # the configuration is written after the package (no conffile question)
  [ "$(grep -n '^apt-get' "$R/log" | cut -d: -f1)" -lt "$(grep -n 'agent.toml' "$R/log" | head -n 1 | cut -d: -f1)" ] ||
    { echo "agent.toml before the package"; cat "$R/log"; return 1; }
  [ ! -e "$R/etc/tumen-agent-install/token" ] && [ ! -e "$R/etc/tumen-agent-install/agent.toml" ] ||
    { echo "filled in: staged files left"; return 1; }
  # 5. run again (an upgrade): reinstalled, the configuration in place kept
  run || { echo "again: failed"; cat "$R/out"; return 1; }
  grep -q '^apt-get install' "$R/log" && ! grep -q '^install ' "$R/log" &&
    [ "$(cat "$R/etc/tumen-agent/token")" = 0123456789abcdef ] || { echo "again:"; cat "$R/log"; return 1; }
  echo "5 scenarios: shipped (nothing downloaded), wrong sha256 (refused), placeholders (package only), filled in (configured after the package, enabled), again (configuration kept)"
}
check "cloud-init install script (stubbed): sha256 check, placeholders, package then config, enable" install_script

# ------------------------------------------------------------------ summary
check_summary tests/check-deploy.sh
echo "exposure (systemd-analyze security --offline=yes, systemd $(systemctl --version | awk 'NR == 1 {print $2}')): tumen-agent.service ${EXPOSURE[tumen-agent]:-?}, tumen-collector.service ${EXPOSURE[tumen-collector]:-?}"
echo "$CHECKS_PASSED passed, $failed failed"
[ "$failed" -eq 0 ]
