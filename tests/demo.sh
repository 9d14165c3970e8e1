#!/usr/bin/env bash
# The dprk-2017 replay, in one command, as root: `tests/demo.sh`.
#
# Installs what is missing (Debian packages: iproute2, nftables, procps,
# prometheus, prometheus-alertmanager), builds the agent, the collector and
# the lab, brings up the dprk-2017 lab (a simulated DPRK Internet of
# network namespaces: nothing leaves this machine), starts an agent on
# every vantage point, the collector, Prometheus and Alertmanager, shows
# the upstream shares per /24 live, applies the TransTeleCom activation of
# 2017-10-01 after 30 s and shows the alert arriving. Ctrl-C stops it and
# tears everything down. Options go to `tumen-lab demo` (e.g.
# --event-after 60, --defaults for the shipped settings).
set -euo pipefail
# Needs root (the lab creates network namespaces).
# Run by another user, it re-runs itself through sudo if sudo is installed
# (keeping PATH, which sudo resets, so that cargo is still found), and
# otherwise says how to run it.
if [ "$(id -u)" -ne 0 ]; then
  self=$(readlink -f "$0")
  if command -v sudo >/dev/null 2>&1; then
    echo "tests/demo.sh: needs root (the lab creates network namespaces): re-running through sudo" >&2
    if [ -z "${RUSTUP_HOME:-}" ] && [ -d "${HOME:-/nonexistent}/.rustup" ]; then
      export RUSTUP_HOME=$HOME/.rustup # this user's toolchains, should sudo reset HOME
    fi
    exec sudo -E env "PATH=$PATH" bash "$self" "$@"
  fi
  echo "tests/demo.sh: needs root (the lab creates network namespaces), and sudo is not installed: run it as root, e.g. su -c 'bash $self'" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
need=()
for pair in ip:iproute2 nft:nftables sysctl:procps prometheus:prometheus \
            prometheus-alertmanager:prometheus-alertmanager; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Only the programs are wanted: the packages' own services stay off.
  if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus prometheus-alertmanager >/dev/null 2>&1 || true
  fi
fi
echo "building (the first time: a few minutes; cargo shows its progress)"
cargo build -p tumen-agent -p tumen-collector -p tumen-lab
exec "${CARGO_TARGET_DIR:-target}/debug/tumen-lab" demo "$@"
