# The harness of tests/check-*.sh, sourced by each:
#   check NAME COMMAND [ARG...]   runs COMMAND, prints PASS (with its time
#                                 and its last line of output) or FAIL
#                                 (with its output), and records it
#   check_summary SCRIPT          prints every result and "N passed, M failed"
# Callers end with `[ "$failed" -eq 0 ]` (or exit on it).
results=()
failed=0
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(date +%s.%N)"; }
check() {
  local name=$1
  shift
  local out t
  t=$(date +%s.%N)
  if out=$("$@" 2>&1); then
    results+=("PASS  $name")
    printf 'PASS  %s (%s s)\n' "$name" "$(secs "$t")"
    [ -z "$out" ] || printf '%s\n' "$out" | tail -n 1 | sed 's/^/      | /'
  else
    results+=("FAIL  $name")
    failed=$((failed + 1))
    printf 'FAIL  %s\n' "$name"
    printf '%s\n' "$out" | tail -n 60 | sed 's/^/      | /'
  fi
}
check_summary() {
  local r pass=0
  for r in "${results[@]}"; do case $r in PASS*) pass=$((pass + 1)) ;; esac; done
  echo
  echo "== $1 summary"
  printf '%s\n' "${results[@]}"
  CHECKS_PASSED=$pass
}
