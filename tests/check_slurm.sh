#!/usr/bin/env bash
# `fulcrum sweep --launcher slurm` on a real one-node Slurm (tools/start-slurm):
#  1. Slurm starts (or is running); if it cannot, the test FAILS with the
#     daemons' logs (start-slurm prints them) — it is never skipped;
#  2. a tiny gradnorm_toy sweep (2 strategies × 2 seeds, 1 epoch) is submitted
#     as a job array with --array-parallelism 2 and --gather; the command
#     returns at once with the job id;
#  3. `fulcrum status FILE` (the result files and their locks, never sacct) is
#     polled until the 4 trials are completed (timeout 120 s); each file is
#     checked, and `fulcrum status DIR` agrees;
#  4. the gather job writes the summary of the 4 files;
#  5. submitting again submits nothing (every trial completed).
# Needs root (start-slurm installs and starts daemons).
# Usage: check_slurm.sh FULCRUM EXPERIMENT.yaml START_SLURM
set -u
fulcrum="$(realpath "$1")"
experiment="$(realpath "$2")"
start_slurm="$(realpath "$3")"
source "$(dirname "$0")/lib.sh"
diagnose() {
  echo "--- fulcrum status"; "$fulcrum" status "$experiment" "${args[@]}"
  echo "--- squeue"; squeue --states=all 2>&1 | head -20
  echo "--- sinfo"; sinfo 2>&1
  for f in "$out"/slurm/*.out "$out"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done
  for log in /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log; do
    echo "--- $log"; tail -n 30 "$log" 2>&1
  done
}

# 1. Slurm.
if ! "$start_slurm"; then
  echo "FAIL: tools/start-slurm could not start Slurm (its logs are above)"
  exit 1
fi

# 2. Submit.
out="$dir/out"
args=(--set data.train_size=200 --set data.val_size=50 --set data.test_size=50
      --set 'model.trunk.hidden=[16, 16]' --set train.batch_size=50 --set train.epochs=1
      --set output="$out"
      --sweep 'strategy={name: gradnorm, alpha: 0.12},{name: dwa}' --sweep seeds=0,1)
cd "$dir" || exit 1
start=$SECONDS
"$fulcrum" sweep "$experiment" "${args[@]}" --launcher slurm --array-parallelism 2 --gather \
  > "$dir/submit.txt" 2>&1
code=$?
cat "$dir/submit.txt"
if [ "$code" -ne 0 ]; then
  echo "FAIL: submission exited $code"
  diagnose
  exit 1
fi
job="$(tail -n 1 "$dir/submit.txt")"
check "submission prints the job id last (got '$job')" grep -qE '^[0-9]+$' <<< "$job"
check "submission returns at once ($((SECONDS - start)) s)" test $((SECONDS - start)) -lt 20
script="$(ls "$out"/slurm/sweep-*.sbatch 2>/dev/null | head -n 1)"
check "an sbatch script is written in <output>/slurm" test -f "$script"
check "the script is an array of the 4 trials, 2 at a time" grep -q '^#SBATCH --array=0-3%2$' "$script"
check "the script runs run-trial per array task" grep -q 'run-trial .* --index "$SLURM_ARRAY_TASK_ID"' "$script"

# 3. Wait, reading the files only.
deadline=$((SECONDS + 120))
until "$fulcrum" status "$experiment" "${args[@]}" > "$dir/status.txt" 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "FAIL: the 4 trials did not complete within 120 s"
    diagnose
    exit 1
  fi
  sleep 1
done
echo "all trials completed $((SECONDS - start)) s after submission"
cat "$dir/status.txt"
check "status counts 4 completed" grep -q '^4 trials: 4 completed,' "$dir/status.txt"
files=("$out"/*.h5)
check "4 result files (got ${#files[@]})" test "${#files[@]}" -eq 4
for f in "${files[@]}"; do
  check "$(basename "$f") is completed" test "$(status "$f")" = completed
  check "$(basename "$f") has its log" grep -q "run-trial: trial" "$f.log"
done
check "one Slurm log per array task" test "$(ls "$out"/slurm/"$job"_*.out 2>/dev/null | wc -l)" -eq 4
"$fulcrum" status "$out" > "$dir/status-dir.txt" 2>&1
check "status DIR exits 0 and agrees" grep -q '^4 trials: 4 completed,' "$dir/status-dir.txt"

# 4. The gather job (afterany) writes the summary.
summary="$out/slurm/summary-$job.txt"
for _ in $(seq 30); do
  [ -s "$summary" ] && grep -q '^dwa ' "$summary" && break
  sleep 1
done
check "the gather job wrote the summary of both strategies" \
  bash -c "grep -q '^gradnorm ' '$summary' && grep -q '^dwa ' '$summary'"

# 5. Resubmission: nothing left to do.
"$fulcrum" sweep "$experiment" "${args[@]}" --launcher slurm --array-parallelism 2 > "$dir/again.txt" 2>&1
code=$?
cat "$dir/again.txt"
check "resubmission exits 0 (got $code)" test "$code" -eq 0
check "resubmission submits nothing" grep -q "nothing to submit" "$dir/again.txt"
check "no second sbatch script" test "$(ls "$out"/slurm/sweep-*.sbatch | wc -l)" -eq 1

# 6. Successive halving: one array per rung, an afterany job deciding each.
cat > "$dir/halving.yaml" <<YAML
name: halving
output: $dir/halving
data: {kind: gradnorm_toy, sigmas: [1, 100], train_size: 200, val_size: 50, test_size: 50}
model: {trunk: {kind: mlp, hidden: [16, 16]}, head: {kind: linear}}
train: {epochs: 2, batch_size: 50}
strategy: {name: fixed}
sweep:
  train.optimizer.lr: [0.01, 0.0001]
  halving: {metric: loss, min_epochs: 1, eta: 2}
YAML
"$fulcrum" sweep "$dir/halving.yaml" --launcher slurm > "$dir/halving.txt" 2>&1
code=$?
cat "$dir/halving.txt"
check "a halving sweep is submitted (exit $code)" test "$code" -eq 0
check "its first array pauses the trials at the first rung" \
  grep -q -- '--pause-after 1' "$dir"/halving/slurm/sweep-*.sbatch
report=""
for _ in $(seq 120); do
  report="$(grep -l 'picked: ' "$dir"/halving/slurm/halving-*.out 2>/dev/null | head -n 1)"
  [ -n "$report" ] && break
  sleep 1
done
check "the last halving job reports the pick" test -n "$report"
check "two arrays were submitted, one per rung" \
  test "$(ls "$dir"/halving/slurm/sweep-*.sbatch | wc -l)" -eq 2
"$fulcrum" status "$dir/halving.yaml" > "$dir/halving-status.txt" 2>&1
check "one trial completed, one paused at the first rung" \
  grep -q '^2 trials: 1 completed, 1 paused,' "$dir/halving-status.txt"
check "the record holds the one promotion" \
  test "$(grep -c '{rung: 0, configuration' "$dir"/halving/halving-halving-*.yaml)" -eq 1

echo "check_slurm: $passed passed, $failed failed, $((SECONDS - start)) s"
if [ "$failed" -ne 0 ]; then diagnose; exit 1; fi
exit 0
