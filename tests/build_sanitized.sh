#!/usr/bin/env bash
# Builds what the sanitizer and fuzz tests run, with AddressSanitizer and
# UndefinedBehaviorSanitizer, in BUILD_DIR/sanitize: one clang build
# (-DFULCRUM_SANITIZE=ON -DFULCRUM_FUZZ=ON) of the Catch2 test executables,
# the `fulcrum` command and the two libFuzzer targets. CTest runs it once, as
# the fixture `sanitized_build` of the tests `sanitizers` and `fuzz`; each of
# them calls it again for its own targets (then a no-op), so that either also
# runs on its own. Prints the build's wall time.
# Usage: build_sanitized.sh SOURCE_DIR BUILD_DIR [TARGET...]
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 SOURCE_DIR BUILD_DIR [TARGET...]" >&2
  exit 2
fi
source_dir="$1"
build_dir="$2/sanitize"
shift 2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(test_results test_framework test_strategies test_models test_datasets test_integration fulcrum
           fuzz_experiment fuzz_trial_reader)
fi
if ! command -v clang++ > /dev/null; then
  echo "FAIL: clang++ is missing (tools/install-deps installs clang and libclang-rt-14-dev)"
  exit 1
fi

mkdir -p "$build_dir"
# One ninja at a time in the folder, also when the tests run on their own in parallel.
exec 9> "$build_dir/.build-lock"
flock 9
start=$SECONDS
if [ ! -f "$build_dir/build.ninja" ]; then
  # Release for NDEBUG, as shipped; FULCRUM_SANITIZE's -O1 follows and wins. gcc's
  # Release build is the warnings gate, so clang's own warnings do not fail this one.
  CC=clang CXX=clang++ cmake -S "$source_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DFULCRUM_SANITIZE=ON -DFULCRUM_FUZZ=ON -DFULCRUM_WARNINGS_AS_ERRORS=OFF > "$build_dir/configure.log" 2>&1 ||
    { cat "$build_dir/configure.log"; echo "FAIL: configuring the sanitized build in $build_dir"; exit 1; }
fi
jobs="$(nproc)"
log="$build_dir/build.log"
ninja -C "$build_dir" -j "$jobs" "${targets[@]}" > "$log" 2>&1 ||
  { grep -E -A12 "^FAILED:|error:" "$log" | head -80; echo "FAIL: building ${targets[*]} in $build_dir (log: $log)"; exit 1; }
compiled="$(grep -cE '^\[[0-9]+/[0-9]+\] Building' "$log")"
echo "sanitized build in $build_dir: ${targets[*]} up to date; $compiled files compiled in $((SECONDS - start)) s (ninja -j $jobs)"
