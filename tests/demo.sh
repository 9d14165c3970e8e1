#!/usr/bin/env bash
# The dprk-2017 replay, in one command: `sudo tests/demo.sh`.
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
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/demo.sh: the lab creates network namespaces and needs root: sudo tests/demo.sh" >&2
  exit 1
fi
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
echo "building (first time: a few minutes)"
cargo build -q -p tumen-agent -p tumen-collector -p tumen-lab
exec target/debug/tumen-lab demo "$@"
