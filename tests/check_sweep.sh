#!/usr/bin/env bash
# `fulcrum sweep` end to end on tiny gradnorm_toy trials:
#  1. 2 strategies × 2 seeds with --jobs 2 → 4 completed files, exit 0;
#  2. a sweep killed with SIGKILL (the runner and its children) midway, run
#     again: completed files untouched (same checksums), one completed file
#     per trial;
#  3. a trial whose lock another process holds is skipped as running elsewhere;
#  4. a sweep where one configuration diverges finishes the others and exits 1
#     naming the failed trial;
#  5. SIGINT stops the sweep; the interrupted file says so and a dry run
#     lists it as interrupted (so a rerun redoes it).
# Usage: check_sweep.sh FULCRUM EXPERIMENT.yaml (gradnorm_toy.yaml)
set -u
fulcrum="$1"
experiment="$2"
source "$(dirname "$0")/lib.sh"
completed_count() {  # completed_count DIR
  local n=0 f
  for f in "$1"/*.h5; do [ -f "$f" ] && [ "$(status "$f")" = completed ] && n=$((n + 1)); done
  echo "$n"
}
h5_count() { ls "$1"/*.h5 2>/dev/null | wc -l; }

tiny=(--set data.train_size=200 --set data.val_size=50 --set data.test_size=50
      --set 'model.trunk.hidden=[16, 16]' --set train.batch_size=50 --set train.epochs=1)

# 1. A tiny sweep, two at a time.
out="$dir/one"
"$fulcrum" sweep "$experiment" "${tiny[@]}" --set output="$out" \
  --sweep 'strategy={name: gradnorm, alpha: 0.12},{name: dwa}' --sweep seeds=0,1 --jobs 2 > "$dir/one.txt" 2>&1
code=$?
cat "$dir/one.txt"
check "tiny sweep exits 0 (got $code)" test "$code" -eq 0
check "tiny sweep leaves 4 result files (got $(h5_count "$out"))" test "$(h5_count "$out")" -eq 4
check "tiny sweep: 4 completed files" test "$(completed_count "$out")" -eq 4
check "summary table lists 4 completed trials" grep -q "4 of 4 trials completed" "$dir/one.txt"
check "each trial has its log" test "$(ls "$out"/*.h5.log | wc -l)" -eq 4

# 2. Kill a longer sweep (runner and children, as a crash would) midway, then resume.
out="$dir/two"
args=("$experiment" "${tiny[@]}" --set output="$out" --set train.epochs=40
      --sweep 'strategy={name: fixed},{name: dwa},{name: uncertainty}' --sweep seeds=0,1 --jobs 2)
setsid "$fulcrum" sweep "${args[@]}" > "$dir/two.txt" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  sleep 0.1
  [ "$(grep -c ': completed in' "$dir/two.txt")" -ge 2 ] && break
done
kill -9 -- "-$pid"
wait "$pid" 2>/dev/null
sleep 0.2
before=()
for f in "$out"/*.h5; do
  [ "$(status "$f")" = completed ] && before+=("$(sha256sum "$f")")
done
echo "killed after ${#before[@]} completed trials of 6"
check "at least 2 trials completed before the kill (got ${#before[@]})" test "${#before[@]}" -ge 2
check "some trials were left unfinished by the kill" test "${#before[@]}" -lt 6
"$fulcrum" sweep "${args[@]}" > "$dir/two-again.txt" 2>&1
code=$?
cat "$dir/two-again.txt"
check "resumed sweep exits 0 (got $code)" test "$code" -eq 0
check "resumed sweep skips the ${#before[@]} completed trials" \
  test "$(grep -c 'skipped (completed already)' "$dir/two-again.txt")" -eq "${#before[@]}"
for line in "${before[@]}"; do
  check "completed file untouched: ${line#* }" bash -c "echo '$line' | sha256sum --check --quiet"
done
check "one file per trial after resume (got $(h5_count "$out"))" test "$(h5_count "$out")" -eq 6
check "all 6 trials completed after resume" test "$(completed_count "$out")" -eq 6

# 3. A trial locked by another process is not run.
out="$dir/three"
args=("$experiment" "${tiny[@]}" --set output="$out" --sweep 'strategy={name: fixed},{name: dwa}')
first="$("$fulcrum" sweep "${args[@]}" --dry-run | awk '$1 == "0" {print $2}')"
mkdir -p "$out"
lockfile="$out/gradnorm_toy-fixed-seed0-$first.h5.lock"
flock "$lockfile" sleep 20 &
holder=$!
sleep 0.3
"$fulcrum" sweep "${args[@]}" > "$dir/three.txt" 2>&1
code=$?
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
cat "$dir/three.txt"
check "a sweep with a trial running elsewhere exits 1 (got $code)" test "$code" -eq 1
check "the locked trial is reported as running elsewhere" grep -q "#0 $first .*running elsewhere" "$dir/three.txt"
check "the locked trial's file was not written" test ! -e "${lockfile%.lock}"
check "the other trial completed" test "$(completed_count "$out")" -eq 1

# 4. One configuration diverges (SGD with lr 1000): the others finish, exit 1 names it.
out="$dir/four"
args=("$experiment" "${tiny[@]}" --set output="$out" --set 'strategy={name: fixed}'
      --sweep 'train.optimizer={kind: sgd, lr: 1000},{kind: adam, lr: 0.001}' --sweep seeds=0,1 --jobs 2)
bad="$("$fulcrum" sweep "${args[@]}" --dry-run | awk '$1 == "0" {print $2}')"
"$fulcrum" sweep "${args[@]}" > "$dir/four.txt" 2>&1
code=$?
cat "$dir/four.txt"
check "a sweep with a diverging trial exits 1 (got $code)" test "$code" -eq 1
check "the other configuration's 2 trials completed" test "$(completed_count "$out")" -eq 2
check "the failed trial is named with its reason" \
  grep -qE "^  #0 $bad fixed seed 0 .*: failed: loss of task '[a-z0-9]+' is (NaN|infinite) at step" "$dir/four.txt"

# 5. SIGINT: the running trials end marked "interrupted at step N"; a rerun redoes them.
out="$dir/five"
args=("$experiment" "${tiny[@]}" --set output="$out" --set train.epochs=400 --set 'strategy={name: fixed}'
      --sweep seeds=0 --jobs 1)
"$fulcrum" sweep "${args[@]}" > "$dir/five.txt" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  sleep 0.1
  cat "$out"/*.h5.log 2>/dev/null | grep -qE 'epoch +1/' && break
done
kill -INT "$pid"
wait "$pid"
code=$?
cat "$dir/five.txt"
file="$(ls "$out"/*.h5 | head -1)"
check "an interrupted sweep exits 130 (got $code)" test "$code" -eq 130
check "the interrupted trial is reported" grep -q "#0 .*interrupted" "$dir/five.txt"
check "the interrupted file is readable and says so" \
  bash -c "'$fulcrum' show '$file' | grep -qE 'error +interrupted at step [0-9]+'"
"$fulcrum" sweep "${args[@]}" --dry-run > "$dir/five-dry.txt"
check "a dry run shows the interrupted trial as interrupted" grep -q " interrupted " "$dir/five-dry.txt"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
