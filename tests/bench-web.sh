#!/bin/sh
# Load benchmark of the web view (collector/benches/web_load.rs): 1,000
# agents x 6 /24s of state, the real collector pinned to core 0, p99
# against 50 ms. Not part of CI; about 3 minutes. Extra arguments go to
# the bench: --requests N, --runs R, --streams S.
set -eu
cd "$(dirname "$0")/.."
exec cargo bench -p tumen-collector --bench web_load -- "$@"
