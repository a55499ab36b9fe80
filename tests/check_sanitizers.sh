#!/usr/bin/env bash
# Runs fulcrum's tests under AddressSanitizer (with LeakSanitizer) and
# UndefinedBehaviorSanitizer, from the clang build in BUILD_DIR/sanitize
# (tests/build_sanitized.sh, which builds it here if CTest has not):
#   the Catch2 executables test_results, test_framework, test_strategies,
#   test_datasets and test_integration, each in one process, every test case;
#   the broken-config corpus (tests/check_broken_configs.sh) against the
#   sanitized `fulcrum` command.
# Fails on any failed test case and on any sanitizer report, also one from a
# forked child whose failure the test case expects. Leaks are suppressed only
# inside LibTorch, HDF5, OpenBLAS and libgomp (tests/lsan.supp). Prints what
# ran, how long each part took and the sanitizer options.
# Usage: check_sanitizers.sh SOURCE_DIR BUILD_DIR
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2
  exit 2
fi
source_dir="$1"
build_dir="$2/sanitize"
executables=(test_results test_framework test_strategies test_models test_datasets test_integration)
bash "$source_dir/tests/build_sanitized.sh" "$source_dir" "$2" "${executables[@]}" fulcrum || exit 1

work="$(mktemp -d "${TMPDIR:-/tmp}/fulcrum-sanitizers.XXXXXX")"
trap 'rm -rf "$work"' EXIT

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
# The strategy × architecture matrix: one strategy per gradient need here.
export FULCRUM_MATRIX_SUBSET=1
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$source_dir/tests/lsan.supp:print_suppressions=0"
reports='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)'

failed=0
cases=0
assertions=0
# Shows a failed part's log from its first sanitizer report (or its end).
show() {
  local log="$1" first
  first="$(grep -n -m1 -E "$reports" "$log" | cut -d: -f1)"
  if [ -n "$first" ]; then
    tail -n "+$((first > 5 ? first - 5 : 1))" "$log" | head -120
  else
    tail -60 "$log"
  fi
}

for executable in "${executables[@]}"; do
  log="$work/$executable.log"
  mkdir -p "$work/$executable"
  start=$SECONDS
  ( cd "$work/$executable" && "$build_dir/tests/$executable" ) > "$log" 2>&1
  code=$?
  seconds=$((SECONDS - start))
  # Catch2: "All tests passed (A assertions in C test cases)" or "test cases: C | ..." and "assertions: A | ...".
  summary="$(grep -E '^(All tests passed|test cases:|assertions:)' "$log" | tr -s ' ' | paste -sd ' ')"
  if [ "$code" -ne 0 ] || grep -qE "$reports" "$log"; then
    show "$log"
    echo "FAIL: $executable (exit $code, ${seconds} s): ${summary:-no Catch2 summary}"
    failed=$((failed + 1))
  else
    echo "$executable: $summary, ${seconds} s"
    if [[ $summary =~ \(([0-9]+)\ assertions?\ in\ ([0-9]+)\ test\ cases?\) ]]; then
      assertions=$((assertions + BASH_REMATCH[1]))
      cases=$((cases + BASH_REMATCH[2]))
    fi
  fi
done

log="$work/broken_configs.log"
start=$SECONDS
bash "$source_dir/tests/check_broken_configs.sh" "$build_dir/tools/fulcrum" "$source_dir/tests/configs/broken" \
  > "$log" 2>&1
code=$?
seconds=$((SECONDS - start))
summary="$(tail -1 "$log")"
if [ "$code" -ne 0 ] || grep -qE "$reports" "$log"; then
  grep -v '^PASS ' "$log" | head -120
  echo "FAIL: broken-config corpus against the sanitized fulcrum (exit $code, ${seconds} s): $summary"
  failed=$((failed + 1))
else
  echo "broken-config corpus against the sanitized fulcrum: $summary, ${seconds} s"
fi

# The sanitizer flags and the optimisation that applies (the last -O: FULCRUM_SANITIZE's).
flags="$(sed -n 's/^ *FLAGS = //p' "$build_dir/build.ninja" | grep -m1 -e '-fsanitize=' | tr ' ' '\n' |
  grep -E '^-(fsanitize|fno-sanitize|fno-omit-frame-pointer|O[0-3s]|g)' |
  awk '/^-O/ { level = $0; next } { kept = kept " " $0 } END { print level kept }')"
echo "compiled with: $flags (fulcrum's own code; LibTorch, HDF5 and the other libraries as Debian built them)"
echo "ASAN_OPTIONS=$ASAN_OPTIONS"
echo "UBSAN_OPTIONS=$UBSAN_OPTIONS"
echo "LSAN_OPTIONS=$LSAN_OPTIONS"
if [ "$failed" -ne 0 ]; then
  echo "FAIL: $failed of $((${#executables[@]} + 1)) parts failed"
  exit 1
fi
echo "ran under ASan+LSan+UBSan: ${#executables[@]} Catch2 executables, $cases test cases, $assertions assertions," \
  "and the broken-config corpus; no sanitizer report"
