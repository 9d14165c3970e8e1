#!/usr/bin/env bash
# Runs the Ansible role deploy/ansible/roles/tumen for real on this machine
# (connection: local) and checks what it did:
#   tests/check-ansible.sh [DIST]      # DIST: where the .debs are (default dist/)
#
# Needs root. Installs ansible and ansible-lint if missing (apt), then:
#   ansible-playbook --syntax-check; ansible-lint (production profile)
#   a private CA and a collector certificate, made with the openssl commands
#     of docs/deploy.md
#   the agent's download refused with a wrong SHA-256 (nothing installed)
#   site.yml: the collector from DIST's .deb copied over, one agent ("vp-lab",
#     lab targets 198.18.176.0/22, collector https://127.0.0.1:9640) from a
#     URL served on 127.0.0.1 with its SHA-256; both enabled, not started
#     (tumen_start=false: the agent is never started here, and this machine
#     may have no systemd as PID 1)
#   checks: packages, files, owners, modes, enabled links, the rendered
#     configurations (`tumen-agent --dry-run`; the collector serving them on
#     127.0.0.1 as its user, /healthz over TLS with the private CA, the
#     agent's token accepted and a wrong one refused), the agent's token
#     against the collector's hash, the token never in Ansible's output,
#     systemd-analyze verify of the installed units
#   a second run: changed=0; an agent that lost its token: enrolled anew,
#     the old line gone
#   tumen_state=absent: packages purged, nothing of them left (dpkg -l,
#     /etc/tumen-*, /var/lib/tumen-*, /var/cache/tumen-*, units, links,
#     binaries), the agent's line gone; a second removal: changed=0
#
# Refuses to run if Tumen is already installed here (the test removes it).
# On failure too, the trap purges what the test installed. Nothing leaves
# loopback: the collector is started on 127.0.0.1 for a few seconds, the
# agent never.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
A=$ROOT/deploy/ansible
DIST=$(realpath -m "${1:-dist}")
T0=$(date +%s.%N)

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo -E env "PATH=$PATH" bash "$ROOT/tests/check-ansible.sh" "$@"
  fi
  echo "tests/check-ansible.sh: needs root (it installs packages and runs the role on this machine)" >&2
  exit 2
fi

# ------------------------------------------------------------------ tools
need=()
command -v ansible-playbook >/dev/null 2>&1 || need+=(ansible)
command -v ansible-lint >/dev/null 2>&1 || need+=(ansible-lint)
for t in curl openssl setpriv systemd-analyze python3; do
  command -v $t >/dev/null 2>&1 || case $t in
    setpriv) need+=(util-linux) ;; systemd-analyze) need+=(systemd) ;; *) need+=("$t") ;;
  esac
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  t=$(date +%s)
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } \
    >/tmp/check-ansible-apt.log 2>&1; then
    echo "tests/check-ansible.sh: apt-get install ${need[*]} failed (log: /tmp/check-ansible-apt.log)" >&2
    exit 2
  fi
  echo "installed in $(($(date +%s) - t)) s"
fi

AGENT_DEB=$(ls "$DIST"/tumen-agent_*_amd64.deb 2>/dev/null | tail -n 1)
COLL_DEB=$(ls "$DIST"/tumen-collector_*_amd64.deb 2>/dev/null | tail -n 1)
if [ -z "$AGENT_DEB" ] || [ -z "$COLL_DEB" ] || [ ! -f "$DIST/SHA256SUMS" ]; then
  echo "tests/check-ansible.sh: no tumen-agent_*_amd64.deb, tumen-collector_*_amd64.deb and SHA256SUMS in $DIST (tests/release.sh makes them)" >&2
  exit 2
fi
if (cd "$DIST" && ! sha256sum --check --ignore-missing --quiet SHA256SUMS); then
  echo "tests/check-ansible.sh: $DIST/SHA256SUMS does not match the files" >&2
  exit 2
fi
VERSION=$(dpkg-deb --field "$AGENT_DEB" Version)
AGENT_SHA=$(sha256sum "$AGENT_DEB" | cut -d' ' -f1)
for p in tumen-agent tumen-collector; do
  if dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -qv 'not-installed'; then
    echo "tests/check-ansible.sh: $p is installed on this machine; the test installs and purges it: remove it first (apt purge $p)" >&2
    exit 2
  fi
done
for d in /etc/tumen-agent /etc/tumen-collector /var/lib/tumen-agent /var/lib/tumen-collector; do
  if [ -e "$d" ]; then
    echo "tests/check-ansible.sh: $d exists; the test would remove it: move it away first" >&2
    exit 2
  fi
done

TMP=$(mktemp -d /tmp/check-ansible.XXXXXX)
chmod 0755 "$TMP"
HTTP_PID=
purge_all() {
  # What the role (or a failed run of it) may have left.
  local pkgs=()
  for p in tumen-agent tumen-collector; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -qv 'not-installed' && pkgs+=("$p")
  done
  for u in tumen-agent tumen-collector; do
    rm -f /etc/systemd/system/*.wants/$u.service
  done
  [ ${#pkgs[@]} -eq 0 ] || dpkg --purge "${pkgs[@]}" >/dev/null 2>&1
  rm -rf /etc/tumen-agent /etc/tumen-collector /var/lib/tumen-agent /var/lib/tumen-collector \
    /var/cache/tumen-agent /var/cache/tumen-collector
}
cleanup() {
  local rc=$?
  # The collector started by collector_serves (a subshell of check), if it
  # was interrupted before stopping it.
  if [ -s "$TMP/collector.pid" ]; then kill "$(cat "$TMP/collector.pid")" 2>/dev/null; fi
  if [ -n "$HTTP_PID" ]; then kill "$HTTP_PID" 2>/dev/null; wait "$HTTP_PID" 2>/dev/null; fi
  if [ "$rc" -ne 0 ]; then purge_all; fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ harness
# shellcheck source=tests/lib/checks.sh
. "$ROOT/tests/lib/checks.sh"

export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_RETRY_FILES_ENABLED=0
export ANSIBLE_LOCAL_TEMP=$TMP/ansible-local ANSIBLE_REMOTE_TEMP=$TMP/ansible-remote
export ANSIBLE_CONFIG=$A/ansible.cfg
export PY_COLORS=0 NO_COLOR=1

# ------------------------------------------------------------------ static
check "ansible-playbook --syntax-check site.yml" \
  bash -c "cd '$A' && ansible-playbook --syntax-check -i inventory.example.yml site.yml"
check "ansible-lint (deploy/ansible/.ansible-lint: production profile, offline)" \
  bash -c "cd '$A' && ansible-lint"

# ------------------------------------------------------------------ a private CA
# The commands of docs/deploy.md, "A private CA", with 127.0.0.1 as the
# collector's address.
pki() {
  mkdir -p "$TMP/pki" && cd "$TMP/pki" || return 1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -keyout ca-key.pem -out ca.pem -subj "/CN=Tumen private CA" &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout collector-key.pem -out collector.csr -subj "/CN=127.0.0.1" \
      -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -addext "extendedKeyUsage=serverAuth" &&
    openssl x509 -req -in collector.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
      -days 825 -copy_extensions copyall -out collector-cert.pem &&
    openssl verify -CAfile ca.pem collector-cert.pem &&
    openssl x509 -in collector-cert.pem -noout -ext subjectAltName
}
check "private CA and collector certificate (openssl, docs/deploy.md)" pki

# ------------------------------------------------------------------ the lab inventory
# The agent's package comes from a URL on loopback (the URL path of the
# role), the collector's from the file (the copy path).
HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$DIST" "$HTTP_PORT" >"$TMP/http.log" 2>&1 &
HTTP_PID=$!
AGENT_URL=http://127.0.0.1:$HTTP_PORT/$(basename "$AGENT_DEB")
cat >"$TMP/inventory.yml" <<EOF
---
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: /usr/bin/python3
    # Never start anything here: the agent would probe.
    tumen_start: false
  children:
    tumen_collectors:
      hosts:
        collector:
          tumen_collector_deb: $COLL_DEB
          tumen_collector_tls_cert_src: $TMP/pki/collector-cert.pem
          tumen_collector_tls_key_src: $TMP/pki/collector-key.pem
          tumen_collector_targets: ["198.18.176.0/22"]
    tumen_agents:
      hosts:
        vp-lab:
          tumen_agent_deb_url: $AGENT_URL
          tumen_agent_deb_sha256: $AGENT_SHA
          tumen_agent_collector_url: https://127.0.0.1:9640
          tumen_agent_ca_src: $TMP/pki/ca.pem
          tumen_agent_targets: ["198.18.176.0/22"]
          tumen_agent_allow_reserved: true
          tumen_agent_pps: 10
EOF

play() {  # play LOGNAME [ansible-playbook args...]: the output goes to $TMP/LOGNAME.log
  local log=$TMP/$1.log
  shift
  (cd "$A" && ansible-playbook -i "$TMP/inventory.yml" site.yml "$@") >"$log" 2>&1
  local rc=$?
  cat "$log" >>"$TMP/all-ansible.log"
  [ $rc -eq 0 ] || tail -n 40 "$log"
  return $rc
}
changed_total() {  # the sum of changed= over the PLAY RECAP of a log
  awk '/PLAY RECAP/ {r = 1; next} r && /changed=/ {for (i = 1; i <= NF; i++) if ($i ~ /^changed=/) {split($i, a, "="); s += a[2]}} END {print s + 0}' "$TMP/$1.log"
}
recap() { sed -n '/PLAY RECAP/,$p' "$TMP/$1.log"; }
declare -A TIMES

# ------------------------------------------------------------------ wrong SHA-256
wrong_sha() {
  if play wrong-sha --limit vp-lab -e tumen_agent_deb_sha256="$(printf '%064d' 0)"; then
    echo "the run succeeded"; return 1
  fi
  grep -q 'checksum mismatch\|does not match\|did not match' "$TMP/wrong-sha.log" || { tail -n 30 "$TMP/wrong-sha.log"; return 1; }
  ! dpkg-query -W -f '${Status}' tumen-agent 2>/dev/null | grep -q 'install ok installed' || { echo "tumen-agent installed"; return 1; }
  [ -z "$(ls -A /var/cache/tumen-agent 2>/dev/null)" ] || { ls -la /var/cache/tumen-agent; return 1; }
  echo "refused: $(grep -o 'checksum mismatch[^"]*\|did not match[^"]*' "$TMP/wrong-sha.log" | head -n 1)"
}
check "a wrong SHA-256: download refused, nothing installed" wrong_sha

# ------------------------------------------------------------------ first run
t=$(date +%s.%N)
check "site.yml, first run (collector from the .deb file, agent from the URL)" play run1
TIMES[run1]=$(secs "$t")
recap run1

st() { stat -c '%a %U:%G' "$1"; }
want_stat() {  # want_stat PATH MODE OWNER:GROUP
  local got
  got=$(st "$1" 2>&1) || { echo "$1: missing"; return 1; }
  [ "$got" = "$2 $3" ] || { echo "$1: $got, want $2 $3"; return 1; }
}
files() {
  local bad=0
  for p in tumen-agent tumen-collector; do
    v=$(dpkg-query -W -f '${Status} ${Version}' $p 2>&1)
    [ "$v" = "install ok installed $VERSION" ] || { echo "$p: $v"; bad=1; }
  done
  while read -r path mode owner; do
    want_stat "$path" "$mode" "$owner" || bad=1
  done <<'EOF'
/usr/bin/tumen-agent 755 root:root
/usr/bin/tumen-collector 755 root:root
/usr/lib/systemd/system/tumen-agent.service 644 root:root
/usr/lib/systemd/system/tumen-collector.service 644 root:root
/etc/tumen-collector/collector.toml 644 root:root
/etc/tumen-collector/cert.pem 644 root:root
/etc/tumen-collector/key.pem 640 root:tumen-collector
/etc/tumen-collector/tokens 640 root:tumen-collector
/etc/tumen-agent/agent.toml 644 root:root
/etc/tumen-agent/collector-ca.pem 644 root:root
/etc/tumen-agent/token 640 root:tumen-agent
EOF
  for u in tumen-agent tumen-collector; do
    [ "$(readlink -f /etc/systemd/system/multi-user.target.wants/$u.service)" = "$(readlink -f /usr/lib/systemd/system/$u.service)" ] ||
      { echo "$u.service not enabled"; bad=1; }
  done
  cmp -s /etc/tumen-collector/key.pem "$TMP/pki/collector-key.pem" || { echo "key.pem differs"; bad=1; }
  cmp -s /etc/tumen-agent/collector-ca.pem "$TMP/pki/ca.pem" || { echo "collector-ca.pem differs"; bad=1; }
  [ "$(ls /var/cache/tumen-agent)" = "$(basename "$AGENT_DEB")" ] || { echo "agent .deb not cached"; bad=1; }
  grep -q "GET /$(basename "$AGENT_DEB")" "$TMP/http.log" || { echo "agent .deb not fetched from the URL"; bad=1; }
  [ $bad -eq 0 ] && echo "packages $VERSION, 11 files with their modes and owners, both units enabled"
}
check "packages, files, owners, modes, enabled links" files

configs() {
  python3 - <<'EOF' || return 1
import tomllib
a = tomllib.load(open("/etc/tumen-agent/agent.toml", "rb"))
c = tomllib.load(open("/etc/tumen-collector/collector.toml", "rb"))
want_a = {"id": "vp-lab", "collector": "https://127.0.0.1:9640", "targets": ["198.18.176.0/22"],
          "allow_reserved": True, "pps": 10, "token_file": "/etc/tumen-agent/token",
          "ca_file": "/etc/tumen-agent/collector-ca.pem"}
want_c = {"listen": "0.0.0.0:9640", "tls_cert": "/etc/tumen-collector/cert.pem",
          "tls_key": "/etc/tumen-collector/key.pem", "token_file": "/etc/tumen-collector/tokens",
          "targets": ["198.18.176.0/22"]}
bad = [f"agent.toml {k} = {a.get(k)!r}, want {v!r}" for k, v in want_a.items() if a.get(k) != v]
bad += [f"collector.toml {k} = {c.get(k)!r}, want {v!r}" for k, v in want_c.items() if c.get(k) != v]
assert "preset" not in a and "preset" not in c, "preset with targets"
print("\n".join(bad) or "agent.toml and collector.toml hold the inventory's values")
raise SystemExit(1 if bad else 0)
EOF
  mkdir -p "$TMP/state"
  STATE_DIRECTORY=$TMP/state tumen-agent --config /etc/tumen-agent/agent.toml --dry-run >"$TMP/dry-run" 2>&1 ||
    { cat "$TMP/dry-run"; return 1; }
  grep -q '^id: *vp-lab$' "$TMP/dry-run" && grep -q '198.18.176.0/22' "$TMP/dry-run" &&
    grep -q '^collector: https://127.0.0.1:9640' "$TMP/dry-run" || { cat "$TMP/dry-run"; return 1; }
  echo "tumen-agent --config /etc/tumen-agent/agent.toml --dry-run: $(grep '^targets:' "$TMP/dry-run")"
}
check "rendered configurations (TOML values; tumen-agent --dry-run)" configs

token_hash() {  # the sha256 of the agent's token (first non-comment line), never the token
  python3 -c '
import hashlib
t = next(l.strip() for l in open("/etc/tumen-agent/token") if l.strip() and not l.strip().startswith("#"))
print(hashlib.sha256(t.encode()).hexdigest())'
}
tokens() {
  local h n
  h=$(token_hash) || { echo "no token in /etc/tumen-agent/token"; return 1; }
  n=$(grep -c "^vp-lab " /etc/tumen-collector/tokens)
  grep -qx "vp-lab sha256:$h" /etc/tumen-collector/tokens && [ "$n" -eq 1 ] ||
    { echo "the collector's token file has $n vp-lab line(s), none (or not only one) with the agent token's hash"; return 1; }
  # no_log: the token appears nowhere in Ansible's output
  if grep -qF -- "$(sed -n '/^[^#]/{p;q}' /etc/tumen-agent/token)" "$TMP/all-ansible.log"; then
    echo "the token is in Ansible's output"; return 1
  fi
  setpriv --reuid=tumen-agent --regid=tumen-agent --init-groups test -r /etc/tumen-agent/token ||
    { echo "tumen-agent cannot read its token"; return 1; }
  echo "vp-lab sha256:${h:0:12}... in the collector's tokens (once); the agent's user can read its token; not in Ansible's output"
}
check "enrolment: the agent's token matches the collector's hash, not logged" tokens

collector_serves() {
  # The collector as its own user with the rendered configuration (flags
  # win: a loopback port and a scratch database), /healthz over TLS with
  # the private CA, the agent's token accepted, a wrong one refused.
  local port db=$TMP/db code
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  install -d -o tumen-collector -g tumen-collector -m 0700 "$db"
  setpriv --reuid=tumen-collector --regid=tumen-collector --init-groups \
    tumen-collector serve --config /etc/tumen-collector/collector.toml \
    --listen "127.0.0.1:$port" --db "$db/c.db" >"$TMP/collector.log" 2>&1 &
  local COLL_PID=$!
  echo "$COLL_PID" >"$TMP/collector.pid"
  for _ in $(seq 50); do
    curl -fsS --cacert "$TMP/pki/ca.pem" "https://127.0.0.1:$port/healthz" >"$TMP/healthz" 2>/dev/null && break
    kill -0 "$COLL_PID" 2>/dev/null || break
    sleep 0.2
  done
  local ok=0
  if [ "$(cat "$TMP/healthz" 2>/dev/null)" = ok ]; then
    (umask 077 && printf 'Authorization: Bearer %s\n' "$(sed -n '/^[^#]/{p;q}' /etc/tumen-agent/token)" >"$TMP/auth")
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$TMP/pki/ca.pem" -H @"$TMP/auth" \
      "https://127.0.0.1:$port/api/v1/schedule")
    # 404 no_schedule comes after authentication; 401 would be a refused token.
    [ "$code" = 404 ] || { echo "the agent's token: HTTP $code"; ok=1; }
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$TMP/pki/ca.pem" \
      -H "Authorization: Bearer $(printf '%064d' 0)" "https://127.0.0.1:$port/api/v1/schedule")
    [ "$code" = 401 ] || { echo "a wrong token: HTTP $code"; ok=1; }
    rm -f "$TMP/auth"
  else
    echo "no /healthz"; ok=1
  fi
  kill "$COLL_PID" 2>/dev/null; wait "$COLL_PID" 2>/dev/null
  : >"$TMP/collector.pid"
  [ $ok -eq 0 ] || { cat "$TMP/collector.log"; return 1; }
  echo "https://127.0.0.1:$port/healthz ok (curl --cacert ca.pem); the agent's token: 404 no_schedule (authenticated); a wrong one: 401"
}
check "collector serves the rendered configuration as its user (TLS, tokens)" collector_serves

verify_units() {
  local out
  out=$(systemd-analyze verify /usr/lib/systemd/system/tumen-agent.service /usr/lib/systemd/system/tumen-collector.service 2>&1)
  local rc=$?
  # verify exits 0 on unknown keys and bad values: any line naming a unit fails
  if [ $rc -ne 0 ] || printf '%s\n' "$out" | grep -q 'tumen-'; then
    printf '%s\n' "$out"; return 1
  fi
  echo "systemd-analyze verify: clean"
}
check "systemd-analyze verify of the installed units" verify_units

# ------------------------------------------------------------------ idempotence
H1=$(token_hash 2>/dev/null)
S1=$(sha256sum /etc/tumen-collector/tokens)
t=$(date +%s.%N)
second() {
  play run2 || { tail -n 40 "$TMP/run2.log"; return 1; }
  local c
  c=$(changed_total run2)
  [ "$c" -eq 0 ] || { recap run2; grep -B1 -A3 '^changed:' "$TMP/run2.log" | head -n 40; return 1; }
  [ "$(token_hash)" = "$H1" ] && [ "$(sha256sum /etc/tumen-collector/tokens)" = "$S1" ] ||
    { echo "a token changed"; return 1; }
  recap run2
}
check "site.yml, second run: changed=0, tokens untouched" second
TIMES[run2]=$(secs "$t")

reenrol() {
  # The agent lost its token (a rebuilt VPS): a new one, the stale line gone.
  : >/etc/tumen-agent/token
  play reenrol --limit vp-lab || { tail -n 40 "$TMP/reenrol.log"; return 1; }
  local h
  h=$(token_hash) || return 1
  [ "$h" != "$H1" ] || { echo "same token"; return 1; }
  [ "$(grep -c '^vp-lab ' /etc/tumen-collector/tokens)" -eq 1 ] && grep -qx "vp-lab sha256:$h" /etc/tumen-collector/tokens ||
    { echo "the collector's file:"; sed 's/sha256:\(.\{12\}\).*/sha256:\1.../' /etc/tumen-collector/tokens; return 1; }
  want_stat /etc/tumen-agent/token 640 root:tumen-agent || return 1
  echo "new token enrolled ($(changed_total reenrol) changes), one vp-lab line"
}
check "an agent without its token is enrolled anew, the stale line removed" reenrol

# ------------------------------------------------------------------ removal
t=$(date +%s.%N)
check "site.yml -e tumen_state=absent" play absent1 -e tumen_state=absent
TIMES[absent]=$(secs "$t")
recap absent1
nothing_left() {
  local left
  left=$(
    dpkg -l 'tumen-*' 2>/dev/null | awk '/^[a-z][a-z] +tumen-/ && $1 != "un" && $1 != "pn"'
    ls -d /etc/tumen-* /var/lib/tumen-* /var/cache/tumen-* /lib/systemd/system/tumen-* \
      /usr/lib/systemd/system/tumen-* /etc/systemd/system/tumen-* /etc/systemd/system/*.wants/tumen-* \
      /usr/bin/tumen-* /usr/lib/sysusers.d/tumen-* 2>/dev/null
  )
  [ -z "$left" ] || { echo "left: $left"; return 1; }
  echo "nothing of tumen-agent and tumen-collector is left (the users stay: $(getent passwd tumen-agent tumen-collector | cut -d: -f1 | xargs))"
}
check "nothing left: dpkg -l, /etc, /var/lib, /var/cache, units, links, binaries" nothing_left
absent_again() {
  play absent2 -e tumen_state=absent || { tail -n 40 "$TMP/absent2.log"; return 1; }
  [ "$(changed_total absent2)" -eq 0 ] || { recap absent2; return 1; }
  echo "changed=0"
}
check "a second removal: changed=0" absent_again

# ------------------------------------------------------------------ summary
check_summary tests/check-ansible.sh
echo "packages: $(basename "$COLL_DEB"), $(basename "$AGENT_DEB") from $DIST"
echo "times: first run ${TIMES[run1]:-?} s, second run ${TIMES[run2]:-?} s, removal ${TIMES[absent]:-?} s; total $(secs "$T0") s"
echo "$CHECKS_PASSED passed, $failed failed"
if [ "$failed" -ne 0 ]; then
  exit 1
fi
