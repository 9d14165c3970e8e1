#!/usr/bin/env bash
# Checks the release in dist/ (made by tests/release.sh) for real, as root,
# on this machine: `tests/check-packages.sh [DIST]`
#
#   lintian (errors and warnings fail; every override is justified in
#     deploy/debian/*/lintian-overrides)
#   the newest GLIBC_ symbol version the binaries need is at most 2.31, in
#     dist/ and inside the packages; SHA256SUMS matches
#   dpkg -i both packages: every file in place with its owner and mode,
#     conffiles, the system users, the secret files, nothing enabled;
#     `systemd-analyze verify` of the installed units; --version; the man
#     pages render; the bash completions load; the unconfigured agent
#     refuses to start; `tumen-collector token` works on the installed
#     token file; reinstalling keeps an edited conffile and the tokens
#   dpkg --purge both: nothing of them is left (the users may stay, as
#     Debian policy allows)
#   on Debian 11 (glibc 2.31, the oldest the release supports), in a
#     minbase chroot made with debootstrap from the package mirror (about
#     a minute): the portable binaries run (--version, infer on a fixture,
#     the agent's dry run), and the packages install (users and secret
#     files made by Debian 11's systemd-sysusers) and purge
#
# Refuses to run if tumen-agent or tumen-collector is already installed
# (it would remove them). Exits 1 if a check failed; purges on the way out.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIST=${1:-$ROOT/dist}
GLIBC_MAX=2.31
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/check-packages.sh: installs packages: run it as root" >&2
  exit 2
fi
shopt -s nullglob
debs=("$DIST"/tumen-agent_*_amd64.deb "$DIST"/tumen-collector_*_amd64.deb)
if [ ${#debs[@]} -ne 2 ]; then
  echo "tests/check-packages.sh: expected one tumen-agent and one tumen-collector .deb in $DIST: run tests/release.sh first" >&2
  exit 2
fi
for p in tumen-agent tumen-collector; do
  if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$'; then
    echo "tests/check-packages.sh: $p is installed on this machine; this check would purge it. Remove it first (dpkg --purge $p)." >&2
    exit 2
  fi
done
need=()
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v objdump >/dev/null 2>&1 || need+=(binutils)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v man >/dev/null 2>&1 || need+=(man-db)
[ -f /usr/share/bash-completion/bash_completion ] || need+=(bash-completion)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >/dev/null
fi

TMP=$(mktemp -d /tmp/check-packages.XXXXXX)
purge_all() { dpkg --purge tumen-agent tumen-collector >/dev/null 2>&1 || true; }
OLD=$TMP/bullseye
cleanup() {
  purge_all
  # Never rm -rf through a mounted /proc.
  if mountpoint -q "$OLD/proc" 2>/dev/null; then umount "$OLD/proc" || umount -l "$OLD/proc"; fi
  if mountpoint -q "$OLD/proc" 2>/dev/null; then
    echo "tests/check-packages.sh: $OLD/proc is still mounted; $TMP left in place" >&2
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT

# shellcheck source=tests/lib/checks.sh
. "$ROOT/tests/lib/checks.sh"

# ------------------------------------------------------------ before install
check "lintian: no error, no warning (overrides justified)" \
  lintian --fail-on error,warning "${debs[@]}"

newest_glibc() { objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1; }
glibc_ok() {
  local f v bad=0
  for f in "$@"; do
    v=$(newest_glibc "$f")
    printf '%s needs GLIBC_%s\n' "${f#"$TMP"/}" "$v"
    [ -n "$v" ] || { echo "$f: no GLIBC_ symbol version found"; bad=1; }
    [ "$(printf '%s\n%s\n' "$v" "$GLIBC_MAX" | sort -V | tail -n 1)" = "$GLIBC_MAX" ] ||
      { echo "$f needs GLIBC_$v, newer than $GLIBC_MAX"; bad=1; }
  done
  return $bad
}
mkdir -p "$TMP/x"
for d in "${debs[@]}"; do dpkg-deb -x "$d" "$TMP/x"; done
check "newest GLIBC_ symbol version <= $GLIBC_MAX (dist/ binaries and the packaged ones)" \
  glibc_ok "$DIST"/tumen-agent-*-x86_64-linux-gnu "$DIST"/tumen-collector-*-x86_64-linux-gnu \
  "$TMP/x/usr/bin/tumen-agent" "$TMP/x/usr/bin/tumen-collector"
check "SHA256SUMS lists and matches every file of dist/" \
  bash -c 'cd "$1" && sha256sum --check --strict SHA256SUMS && [ "$(wc -l <SHA256SUMS)" -eq "$(ls | grep -cv "^SHA256SUMS$")" ]' _ "$DIST"

# ------------------------------------------------------------ install
check "dpkg -i tumen-agent tumen-collector" dpkg -i "${debs[@]}"

# path  mode  owner  group  (every file the packages install, and the
# secrets postinst makes)
expected() {
  local p
  for p in agent collector; do
    cat <<EOF
/usr/bin/tumen-$p 755 root root
/usr/lib/systemd/system/tumen-$p.service 644 root root
/usr/lib/sysusers.d/tumen-$p.conf 644 root root
/usr/share/doc/tumen-$p/README.Debian 644 root root
/usr/share/doc/tumen-$p/changelog.Debian.gz 644 root root
/usr/share/doc/tumen-$p/copyright 644 root root
/usr/share/lintian/overrides/tumen-$p 644 root root
/usr/share/bash-completion/completions/tumen-$p 644 root root
/usr/share/zsh/vendor-completions/_tumen-$p 644 root root
/usr/share/fish/vendor_completions.d/tumen-$p.fish 644 root root
EOF
  done
  cat <<'EOF'
/etc/tumen-agent/agent.toml 644 root root
/etc/tumen-agent/token 640 root tumen-agent
/usr/share/man/man1/tumen-agent.1.gz 644 root root
/etc/tumen-collector/collector.toml 644 root root
/etc/tumen-collector/tokens 640 root tumen-collector
/usr/share/man/man1/tumen-collector.1.gz 644 root root
/usr/share/man/man1/tumen-collector-serve.1.gz 644 root root
/usr/share/man/man1/tumen-collector-infer.1.gz 644 root root
/usr/share/man/man1/tumen-collector-token.1.gz 644 root root
/usr/share/man/man1/tumen-collector-bgp.1.gz 644 root root
EOF
}
expected | sort >"$TMP/expected"
files_in_place() {
  local path mode owner group got bad=0
  while read -r path mode owner group; do
    got=$(stat -c '%a %U %G' "$path" 2>/dev/null) || { echo "missing: $path"; bad=1; continue; }
    [ "$got" = "$mode $owner $group" ] || { echo "$path: $got, expected $mode $owner $group"; bad=1; }
  done <"$TMP/expected"
  # ... and the packages install nothing else.
  dpkg -L tumen-agent tumen-collector | while read -r f; do [ -z "$f" ] || [ -d "$f" ] || echo "$f"; done | sort >"$TMP/listed"
  comm -13 <(awk '{print $1}' "$TMP/expected") "$TMP/listed" | sed 's/^/unexpected file: /' | grep . && bad=1
  return $bad
}
check "every file in place with its mode and owner, and no other" files_in_place

conffiles_ok() {
  grep -qx /etc/tumen-agent/agent.toml /var/lib/dpkg/info/tumen-agent.conffiles &&
    grep -qx /etc/tumen-collector/collector.toml /var/lib/dpkg/info/tumen-collector.conffiles &&
    ! grep -q token /var/lib/dpkg/info/tumen-agent.conffiles /var/lib/dpkg/info/tumen-collector.conffiles &&
    cmp "$TMP/x/etc/tumen-agent/agent.toml" "$ROOT/deploy/systemd/agent.toml.example" &&
    cmp "$TMP/x/etc/tumen-collector/collector.toml" "$ROOT/deploy/systemd/collector.toml.example"
}
check "the example configurations are the conffiles (the secrets are not)" conffiles_ok

users_ok() {
  local u line bad=0
  for u in tumen-agent tumen-collector; do
    line=$(getent passwd "$u") || { echo "no user $u"; bad=1; continue; }
    IFS=: read -r _ _ uid _ _ home shell <<<"$line"
    [ "$uid" -lt 1000 ] || { echo "$u: uid $uid is not a system uid"; bad=1; }
    [ "$home" = "/var/lib/$u" ] || { echo "$u: home $home"; bad=1; }
    case $shell in */nologin | /bin/false) ;; *) echo "$u: shell $shell"; bad=1 ;; esac
    getent group "$u" >/dev/null || { echo "no group $u"; bad=1; }
  done
  return $bad
}
check "system users and groups tumen-agent, tumen-collector (sysusers.d)" users_ok

nothing_enabled() {
  # (deb-systemd-helper's .dsh-also lists the links enabling *would* make;
  # an enabled unit has its links, and systemctl says so even offline.)
  local u state
  for u in tumen-agent tumen-collector; do
    [ -z "$(find /etc/systemd/system -name "$u.service")" ] || { echo "$u: links in /etc/systemd/system"; return 1; }
    ! deb-systemd-helper --quiet was-enabled "$u.service" || { echo "$u: enabled for deb-systemd-helper"; return 1; }
    state=$(systemctl is-enabled "$u.service" 2>&1)
    [ "$state" = disabled ] || { echo "$u: systemctl is-enabled: $state"; return 1; }
    if [ -d /run/systemd/system ]; then
      ! systemctl is-active --quiet "$u.service" || { echo "$u: running"; return 1; }
    fi
  done
}
check "installing enables and starts nothing" nothing_enabled

verify_units() {
  # verify exits 0 on unknown keys and bad values (it only logs them): any
  # message that names the unit is a failure.
  local u out bad=0
  for u in tumen-agent tumen-collector; do
    out=$(systemd-analyze verify "/usr/lib/systemd/system/$u.service" 2>&1) || bad=1
    if printf '%s\n' "$out" | grep -q "$u"; then bad=1; fi
    printf '%s\n' "$out"
  done
  return $bad
}
check "systemd-analyze verify of the installed units" verify_units

version_ok() {
  local b out
  for b in tumen-agent tumen-collector; do
    out=$("/usr/bin/$b" --version) || return 1
    echo "$out"
      [[ $out =~ ^$b\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\ ([0-9a-f]{12}|unknown),\ built\ [0-9]{4}-[0-9]{2}-[0-9]{2},\ x86_64-unknown-linux-gnu\)$ ]] ||
      { echo "unexpected: $out"; return 1; }
  done
}
check "tumen-agent --version, tumen-collector --version (version, commit, date, target)" version_ok

man_ok() {
  local page out
  for page in tumen-agent tumen-collector tumen-collector-serve tumen-collector-infer tumen-collector-token tumen-collector-bgp; do
    out=$(MANWIDTH=80 MANPAGER=cat man --warnings "$page" 2>&1 >/dev/null) || { echo "man $page failed"; return 1; }
    [ -z "$out" ] || { echo "man $page: $out"; return 1; }
    MANWIDTH=80 MANPAGER=cat man "$page" 2>/dev/null | grep -q -- '--help' || { echo "man $page: no options"; return 1; }
  done
  MANWIDTH=80 MANPAGER=cat man tumen-agent | grep -q -- '--collector'
}
check "man pages render without warnings (man tumen-agent, tumen-collector[-serve|-infer|-token])" man_ok

completion_ok() {
  bash -c '
    source /usr/share/bash-completion/bash_completion
    source /usr/share/bash-completion/completions/tumen-agent
    source /usr/share/bash-completion/completions/tumen-collector
    complete -p tumen-agent && complete -p tumen-collector
    COMP_WORDS=(tumen-collector in); COMP_CWORD=1; COMP_LINE="tumen-collector in"; COMP_POINT=${#COMP_LINE}
    f=$(complete -p tumen-collector | sed -n "s/.*-F \([^ ]*\).*/\1/p"); "$f" tumen-collector in tumen-collector
    printf "%s\n" "${COMPREPLY[@]}" | grep -qx infer'
}
check "bash completions load and complete (tumen-collector in<TAB> -> infer)" completion_ok

agent_refuses_unconfigured() {
  # As the unit would start it: no target in the shipped agent.toml.
  local out rc
  out=$(/usr/bin/tumen-agent --config /etc/tumen-agent/agent.toml --dry-run 2>&1)
  rc=$?
  echo "$out"
  [ "$rc" -eq 64 ] && printf '%s\n' "$out" | grep -qi 'target'
}
check "the unconfigured agent refuses to start (exit 64, says why)" agent_refuses_unconfigured

token_works() {
  local tok line
  tok=$(/usr/bin/tumen-collector token vp-check --token-file /etc/tumen-collector/tokens) || return 1
  [ -n "$tok" ] || return 1
  line=$(grep '^vp-check ' /etc/tumen-collector/tokens) || { echo "no line for vp-check"; return 1; }
  [ "$line" = "vp-check sha256:$(printf '%s' "$tok" | sha256sum | awk '{print $1}')" ] ||
    { echo "unexpected line: $line"; return 1; }
  [ "$(stat -c '%a %U %G' /etc/tumen-collector/tokens)" = "640 root tumen-collector" ]
}
check "tumen-collector token on the installed token file (line, mode and group kept)" token_works

reinstall_keeps() {
  echo '# edited by the administrator' >>/etc/tumen-agent/agent.toml
  echo 'secret-token' >/etc/tumen-agent/token
  dpkg -i --force-confold "${debs[0]}" >/dev/null || return 1
  grep -q '^# edited by the administrator$' /etc/tumen-agent/agent.toml &&
    [ "$(cat /etc/tumen-agent/token)" = secret-token ] &&
    grep -q '^vp-check ' /etc/tumen-collector/tokens &&
    [ "$(stat -c '%a %U %G' /etc/tumen-agent/token)" = "640 root tumen-agent" ]
}
check "reinstalling keeps an edited conffile and the secrets" reinstall_keeps

# ------------------------------------------------------------ purge
# What the units would have written, so that purge has state to remove.
mkdir -p /var/lib/tumen-agent/spool /var/lib/tumen-collector
touch /var/lib/tumen-agent/spool/000001.seg /var/lib/tumen-collector/tumen-collector.db
# ... and what docs/deploy.md has the administrator put beside the secrets.
touch /etc/tumen-agent/collector-ca.pem /etc/tumen-collector/cert.pem /etc/tumen-collector/key.pem
check "dpkg --purge tumen-agent tumen-collector" dpkg --purge tumen-agent tumen-collector
nothing_left() {
  local bad=0 f
  for p in tumen-agent tumen-collector; do
    dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qv '^not-installed$' &&
      { echo "$p still known to dpkg: $(dpkg-query -W -f='${db:Status-Abbrev}' "$p")"; bad=1; }
  done
  while read -r f _; do [ ! -e "$f" ] || { echo "left: $f"; bad=1; }; done <"$TMP/expected"
  for f in /etc/tumen-agent /etc/tumen-collector /var/lib/tumen-agent /var/lib/tumen-collector \
    /usr/share/doc/tumen-agent /usr/share/doc/tumen-collector \
    /var/lib/systemd/deb-systemd-helper-enabled/tumen-agent.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-enabled/tumen-collector.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-masked/tumen-agent.service \
    /var/lib/systemd/deb-systemd-helper-masked/tumen-collector.service; do
    [ ! -e "$f" ] || { echo "left: $f"; bad=1; }
  done
  return $bad
}
check "nothing is left (the system users may stay)" nothing_left

# ------------------------------------------------------------ Debian 11
debian11() {
  debootstrap --variant=minbase bullseye "$OLD" http://deb.debian.org/debian >"$TMP/debootstrap.log" 2>&1 ||
    { tail -n 20 "$TMP/debootstrap.log"; return 1; }
  mount -t proc proc "$OLD/proc" || return 1
  chroot "$OLD" ldd --version | sed -n 1p
  chroot "$OLD" ldd --version | sed -n 1p | grep -q ' 2\.31$' || { echo "not glibc 2.31"; return 1; }
  local v b
  v=$(ls "$DIST"/tumen-agent-*-x86_64-linux-gnu | sed 's/.*tumen-agent-\(.*\)-x86_64-linux-gnu/\1/')
  for b in tumen-agent tumen-collector; do
    install -m 0755 "$DIST/$b-$v-x86_64-linux-gnu" "$OLD/usr/local/bin/$b"
    chroot "$OLD" "/usr/local/bin/$b" --version || return 1
  done
  cp "$ROOT/collector/tests/fixtures/input/dprk-transtelecom.txt" "$OLD/tmp/"
  chroot "$OLD" /usr/local/bin/tumen-collector infer /tmp/dprk-transtelecom.txt | tee "$TMP/infer.out"
  grep -q 'upstream transtelecom (AS20485)' "$TMP/infer.out" || return 1
  chroot "$OLD" /usr/local/bin/tumen-agent --dry-run --target 198.18.176.0/22 --allow-reserved | grep -q 'nothing is sent' || return 1
  rm -f "$OLD"/usr/local/bin/tumen-*
  # Debian 11's systemd-sysusers makes the users; it needs /proc.
  cp /etc/resolv.conf "$OLD/etc/resolv.conf" 2>/dev/null
  chroot "$OLD" apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive chroot "$OLD" apt-get install -y -qq --no-install-recommends systemd >/dev/null 2>&1 ||
    { echo "apt-get install systemd in the Debian 11 chroot failed"; return 1; }
  cp "${debs[@]}" "$OLD/tmp/"
  chroot "$OLD" sh -c 'dpkg -i /tmp/tumen-agent_*.deb /tmp/tumen-collector_*.deb' || return 1
  chroot "$OLD" getent passwd tumen-agent tumen-collector || return 1
  [ "$(chroot "$OLD" stat -c '%a %U %G' /etc/tumen-agent/token)" = "640 root tumen-agent" ] || { echo "token file"; return 1; }
  chroot "$OLD" /usr/bin/tumen-collector --version || return 1
  chroot "$OLD" dpkg --purge tumen-agent tumen-collector >/dev/null || return 1
  for f in /usr/bin/tumen-agent /usr/bin/tumen-collector /etc/tumen-agent /etc/tumen-collector; do
    [ ! -e "$OLD$f" ] || { echo "left in the Debian 11 chroot: $f"; return 1; }
  done
}
check "Debian 11 (glibc 2.31, debootstrap chroot): the binaries run, the packages install and purge" debian11

check_summary tests/check-packages.sh
echo "$CHECKS_PASSED passed, $failed failed"
[ "$failed" -eq 0 ]
