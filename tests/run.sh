#!/usr/bin/env bash
# Tumen's whole test suite, as CI runs it, as root: `tests/run.sh`.
#
# On a fresh Debian machine it first installs what the suite needs (the lab's
# iproute2, nftables, procps and util-linux, and bird2 for the BGP lab;
# traceroute, scamper and ping as
# independent oracles; python3 and openssl for the delivery tests;
# prometheus and prometheus-alertmanager for the end-to-end alert test;
# chromium (and a font) for the web view's browser test; cargo-audit),
# then runs, and fails on the first failure of:
#   cargo fmt --check
#   cargo clippy --all-targets -- -D warnings
#   cargo test --workspace          (unit tests and the lab tests: needs root)
#   tests/check-deploy.sh           (promtool, amtool, systemd-analyze, cloud-init)
#   tests/release.sh                (cargo-zigbuild for glibc 2.31, cargo-deb: dist/)
#   tests/check-packages.sh         (lintian, glibc symbols, dpkg -i, files, purge)
#   tests/check-ansible.sh          (the Ansible role, run for real, then removed)
#   cargo audit against ../shared/advisory-db (offline copy of RustSec)
#   no lab namespace left behind
set -euo pipefail
# Needs root (the lab tests create network namespaces).
# Run by another user, it re-runs itself through sudo if sudo is installed
# (keeping PATH, which sudo resets, so that cargo is still found), and
# otherwise says how to run it.
if [ "$(id -u)" -ne 0 ]; then
  self=$(readlink -f "$0")
  if command -v sudo >/dev/null 2>&1; then
    echo "tests/run.sh: needs root (the lab tests create network namespaces): re-running through sudo" >&2
    if [ -z "${RUSTUP_HOME:-}" ] && [ -d "${HOME:-/nonexistent}/.rustup" ]; then
      export RUSTUP_HOME=$HOME/.rustup # this user's toolchains, should sudo reset HOME
    fi
    exec sudo -E env "PATH=$PATH" bash "$self" "$@"
  fi
  echo "tests/run.sh: needs root (the lab tests create network namespaces), and sudo is not installed: run it as root, e.g. su -c 'bash $self'" >&2
  exit 1
fi
cd "$(dirname "$0")/.."

say() { printf '\n=== %s\n' "$*"; }

say "system packages"
need=()
for pair in ip:iproute2 nft:nftables traceroute:traceroute scamper:scamper ping:iputils-ping \
            sysctl:procps setpriv:util-linux setcap:libcap2-bin python3:python3 openssl:openssl \
            prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager bird:bird2 \
            gobgpd:gobgpd bgpdump:bgpdump chromium:chromium; do
  tool=${pair%%:*}; pkg=${pair#*:}
  command -v "$tool" >/dev/null 2>&1 || need+=("$pkg")
done
# The browser test's screenshots need one font.
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "ok: ip nft traceroute scamper ping sysctl setpriv python3 openssl prometheus alertmanager bird gobgpd bgpdump chromium"

say "cargo tools"
if ! cargo audit --version >/dev/null 2>&1; then
  echo "installing cargo-audit (about five minutes, once)"
  cargo install cargo-audit --locked --quiet
fi
cargo audit --version

# Lab namespaces that exist before the run are not ours to judge.
lab_ns() { ip netns list | awk '{print $1}' | grep -E '^tl[0-9a-f]{6}-' | sort || true; }
before=$(lab_ns)

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

say "cargo test --workspace"
log=$(mktemp)
cargo test --workspace 2>&1 | tee "$log"
passed=$(awk '/^test result:/ {p += $4} END {print p + 0}' "$log")
failed=$(awk '/^test result:/ {f += $6} END {print f + 0}' "$log")
rm -f "$log"
if [ "$passed" -eq 0 ]; then
  echo "cargo test ran no test: a suite that runs nothing is a defect" >&2
  exit 1
fi

say "deploy/ checks (promtool, amtool, systemd-analyze, cloud-init)"
bash tests/check-deploy.sh

say "release: portable binaries and Debian packages into dist/ (tests/release.sh)"
bash tests/release.sh

say "packages: lintian, glibc <= 2.31, dpkg -i, files, units, --version, purge (tests/check-packages.sh)"
bash tests/check-packages.sh dist

say "Ansible role, run for real on this machine (tests/check-ansible.sh)"
bash tests/check-ansible.sh dist

say "cargo audit (offline, ../shared/advisory-db)"
if [ ! -d ../shared/advisory-db ]; then
  echo "../shared/advisory-db is missing: the audit needs the RustSec copy beside the clone" >&2
  exit 1
fi
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
cp -r ../shared/advisory-db "$db/advisory-db"
cargo audit --db "$db/advisory-db" --no-fetch --stale

say "nothing left behind"
target/debug/tumen-lab down --stale >/dev/null
left=$(comm -13 <(echo "$before") <(lab_ns) | grep . || true)
if [ -n "$left" ]; then
  echo "lab namespaces left behind by the suite:" >&2
  echo "$left" >&2
  exit 1
fi
echo "no lab namespace left"

say "all checks passed"
echo "tumen: $passed passed, $failed failed"
