#!/usr/bin/env bash
# `infer` benchmark, side by side in one run:
#  1. RIPE Atlas traceroute results parsed (and, for Tumen, inferred and
#     printed as JSON) per second on ONE core (taskset -c 0), against
#     ripe-atlas-sagan, the official Python parser (installed from PyPI in
#     a venv under target/bench; with ujson, which sagan uses when present),
#     parsing the same newline-delimited file and touching every hop's
#     packets. Medians of REPEATS runs each, and the ratio.
#  2. Text traceroutes (Linux traceroute, Windows tracert, mtr --report,
#     from the corpus and fixtures, concatenated) read and inferred per second.
#  3. Peak RSS while streaming a newline-delimited Atlas dump of GIB GiB
#     (default 1; 0 skips it): the target is under 100 MB.
#   tests/bench-infer.sh [RESULTS] [REPEATS] [GIB]
# defaults: 20000 results, 5 repeats, 1 GiB. Needs python3 (venv), taskset.
# Only ripe-atlas-sagan and ujson are installed: PyPI holds many
# ripe-atlas-* placeholder packages, never install those.
set -euo pipefail
cd "$(dirname "$0")/.."
results=${1:-20000}
repeats=${2:-5}
gib=${3:-1}
cargo build --release -q -p tumen-collector --bin tumen-collector
bin=$PWD/target/release/tumen-collector
mkdir -p target/bench
venv=target/bench/sagan-venv
if ! "$venv/bin/python" -c 'import ripe.atlas.sagan' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q ripe-atlas-sagan ujson
fi
sagan_version=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("ripe.atlas.sagan"))')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 tests/bench/make_atlas.py "$results" >"$work/atlas.jsonl"
size=$(stat -c %s "$work/atlas.jsonl")

calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
secs() { # command...: elapsed seconds
  local t0 t1
  t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
  calc "$t1 - $t0"; echo
}
: >"$work/t"; : >"$work/s"
for _ in $(seq "$repeats"); do
  secs taskset -c 0 "$bin" infer --json "$work/atlas.jsonl" >>"$work/t"
  secs taskset -c 0 "$venv/bin/python" tests/bench/sagan_parse.py "$work/atlas.jsonl" >>"$work/s"
done
t=$(median <"$work/t"); s=$(median <"$work/s")
printf '\nRIPE Atlas traceroute results, %d results (%d MB), one core, median of %d:\n' \
  "$results" $((size / 1000000)) "$repeats"
printf '  %-44s %8.2f s  %10.0f results/s\n' "tumen-collector infer --json (parse+infer)" "$t" "$(calc "$results / $t")"
printf '  %-44s %8.2f s  %10.0f results/s\n' "ripe-atlas-sagan $sagan_version (parse only)" "$s" "$(calc "$results / $s")"
printf '  ratio: tumen is %.1fx sagan\n' "$(calc "$s / $t")"

# Text traceroutes: every Linux/BSD/macOS traceroute text among the
# fixtures and the corpus (each read alone without a warning), repeated to
# about 20,000 traces.
: >"$work/texts"
for f in collector/tests/fixtures/input/*.txt collector/tests/fixtures/input/text1/*.txt collector/tests/corpus/*.txt; do
  if "$bin" infer --strict --format traceroute "$f" >/dev/null 2>&1; then echo "$f" >>"$work/texts"; fi
done
per=$(while read -r f; do cat "$f"; echo; done <"$work/texts" | "$bin" infer --format traceroute - 2>/dev/null | wc -l)
copies=$(( 20000 / (per > 0 ? per : 1) + 1 ))
for _ in $(seq "$copies"); do while read -r f; do cat "$f"; echo; done <"$work/texts"; done >"$work/text.txt"
traces=$("$bin" infer --format traceroute "$work/text.txt" 2>/dev/null | wc -l)
: >"$work/x"
for _ in $(seq "$repeats"); do secs taskset -c 0 "$bin" infer --format traceroute "$work/text.txt" >>"$work/x" 2>/dev/null; done
x=$(median <"$work/x")
printf '\nLinux/BSD/macOS traceroute text (%d files, %d traces, %d KB), one core, median of %d:\n' \
  "$(wc -l <"$work/texts")" "$traces" $(( $(stat -c %s "$work/text.txt") / 1000 )) "$repeats"
printf '  %-44s %8.2f s  %10.0f traces/s\n' "tumen-collector infer" "$x" "$(calc "$traces / $x")"

if [ "$gib" != 0 ]; then
  per_line=$(( size / results ))
  big=$(( gib * 1073741824 / per_line ))
  python3 tests/bench/make_atlas.py "$big" >"$work/big.jsonl"
  rm -f "$work/atlas.jsonl" "$work/text.txt"
  /usr/bin/time -f '%M %e' -o "$work/rss" "$bin" infer --json "$work/big.jsonl" >/dev/null
  read -r rss el <"$work/rss"
  printf '\nStreaming a %.2f GB newline-delimited Atlas dump (%d results):\n' \
    "$(calc "$(stat -c %s "$work/big.jsonl") / 1000000000")" "$big"
  printf '  peak RSS %.1f MB (target < 100 MB), %.1f s\n' "$(calc "$rss / 1024")" "$el"
fi
