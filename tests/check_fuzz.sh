#!/usr/bin/env bash
# Fuzzes the two places where outside bytes enter fulcrum, for a bounded
# time, with libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer (clang):
#   fuzz_experiment    any bytes as an experiment file (parseExperiment); seeds:
#                      the broken-config corpus and experiments/*.yaml
#   fuzz_trial_reader  any bytes as a trial file (screenTrialFile, then
#                      TrialReader); seeds: a small trial file and its
#                      truncations, written here with h5py
# Builds them in BUILD/sanitize (tests/build_sanitized.sh, shared with the
# test `sanitizers`; the targets link its libraries, which carry libFuzzer's
# coverage instrumentation there), fails on any crash, uncaught exception, leak or sanitizer
# report, and prints how many inputs each target tried.
# Usage: check_fuzz.sh SOURCE_DIR BUILD_DIR [SECONDS_PER_TARGET]
set -u
source_dir="$1"
build_dir="$2/sanitize"
seconds="${3:-45}"
python=/usr/bin/python3
bash "$source_dir/tests/build_sanitized.sh" "$source_dir" "$2" fuzz_experiment fuzz_trial_reader || exit 1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/experiments" "$work/trials"
cp "$source_dir"/tests/configs/broken/*.yaml "$source_dir"/experiments/*.yaml "$work/experiments/"
"$python" - "$work/trials" <<'PY'
import os, sys
import h5py, numpy as np
folder = sys.argv[1]
path = os.path.join(folder, "small.h5")
with h5py.File(path, "w", libver="latest") as f:
    f.attrs["schema_version"] = np.int64(1)
    f.attrs["status"] = "completed"
    f.attrs["tasks"] = "a,b"
    f.create_dataset("steps/step", data=np.arange(3.0))
    f.create_dataset("steps/loss/a", data=np.array([1.0, 0.5, 0.25]))
    f.create_dataset("epochs/test/a/accuracy", data=np.array([0.5]))
data = open(path, "rb").read()
for keep in (len(data) // 2, len(data) - 1, 512):
    open(os.path.join(folder, f"truncated-{keep}.h5"), "wb").write(data[:keep])
PY

failed=0
run() {  # run TARGET CORPUS [extra libFuzzer options]
  local target="$1" corpus="$2"; shift 2
  local log="$work/$target.log"
  ( cd "$work" && LSAN_OPTIONS="suppressions=$source_dir/tests/lsan.supp" \
      "$build_dir/tests/fuzz/$target" -max_total_time="$seconds" -print_final_stats=1 -timeout=30 \
      -artifact_prefix="$work/$target-" "$@" "$corpus" > "$log" 2>&1 )
  local code=$?
  local runs
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  if [ "$code" -ne 0 ] || grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:" "$log"; then
    grep -vE "^#[0-9]+|^INFO:|Suppressions used|^ +count|^ +[0-9]+ +[0-9]+ lib|^-+$" "$log" | tail -60
    mkdir -p "$build_dir/findings"
    for artifact in "$work/$target"-*; do
      [ -f "$artifact" ] && cp "$artifact" "$build_dir/findings/" && echo "kept: $build_dir/findings/$(basename "$artifact")"
    done
    echo "FAIL: $target (exit $code) after ${runs:-?} inputs"
    failed=$((failed + 1))
  else
    echo "$target: ${runs:-?} inputs in ${seconds} s, no crash, leak or sanitizer report"
  fi
}
run fuzz_experiment "$work/experiments" -max_len=4096
run fuzz_trial_reader "$work/trials"
[ "$failed" -eq 0 ]
