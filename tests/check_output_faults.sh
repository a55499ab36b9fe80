#!/usr/bin/env bash
# Output folders that cannot take the results:
#  1. a folder that cannot be created (under a regular file): `run` and
#     `sweep` exit 2 before training, the message located at `output`;
#  2. a read-only file system (a tmpfs mounted ro): the same, and the sweep
#     does not mistake it for a trial "running elsewhere";
#  3. a full disk (a small tmpfs): a sweep fills it, the trial that runs out
#     of space fails with a message saying so, the trials completed before it
#     stay readable and untouched, and after the space grows a resumed sweep
#     completes the rest.
# Parts 2 and 3 need `mount -t tmpfs` (root in a container that allows it);
# without it they are reported as skipped.
# Usage: check_output_faults.sh FULCRUM EXPERIMENT.yaml (gradnorm_toy.yaml)
set -u
fulcrum="$1"
experiment="$2"
source "$(dirname "$0")/lib.sh"
mounts=()
cleanup() {  # the mounts first, then lib.sh's scratch folder
  local m
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
skipped=0
lacks() { ! grep -qF -- "$2" "$1"; }
no_crash() { ! grep -qiE 'terminate called|backtrace|frame #|core dumped|Segmentation|crashed in|killed by signal' "$1"; }

tiny=(--set data.train_size=200 --set data.val_size=50 --set data.test_size=50
      --set 'model.trunk.hidden=[16, 16]' --set train.batch_size=50 --set train.epochs=2
      --set 'strategy={name: fixed}' --set train.log_gradients_every=0)

# 1. The output folder cannot be created: a regular file stands in its path.
touch "$dir/a-file"
bad="$dir/a-file/out"
"$fulcrum" run "$experiment" "${tiny[@]}" --set output="$bad" --quiet > "$dir/1run.txt" 2>&1
code=$?
cat "$dir/1run.txt"
check "run into a folder under a file exits 2 (got $code)" test "$code" -eq 2
check "run names the --set and the key" contains "$dir/1run.txt" "--set output=$bad: output: cannot create output folder '$bad': Not a directory"
check "run: no crash output" no_crash "$dir/1run.txt"
"$fulcrum" sweep "$experiment" "${tiny[@]}" --set output="$bad" --sweep seeds=0,1 > "$dir/1sweep.txt" 2>&1
code=$?
cat "$dir/1sweep.txt"
check "sweep into a folder under a file exits 2 (got $code)" test "$code" -eq 2
check "sweep names the --set and the key" contains "$dir/1sweep.txt" "--set output=$bad: output: cannot create output folder"
check "sweep ran no trial" lacks "$dir/1sweep.txt" "fulcrum sweep: "

mkdir -p "$dir/ro" "$dir/full"
if ! mount -t tmpfs -o ro,size=64k tmpfs "$dir/ro" 2>"$dir/mount.txt"; then
  echo "SKIP: cannot mount a tmpfs ($(cat "$dir/mount.txt")): read-only and disk-full cases not run"
  skipped=2
else
  mounts+=("$dir/ro")
  # 2. A read-only file system: detected before training, exit 2, nothing written.
  "$fulcrum" run "$experiment" "${tiny[@]}" --set output="$dir/ro" --quiet > "$dir/2run.txt" 2>&1
  code=$?
  cat "$dir/2run.txt"
  check "run into a read-only folder exits 2 (got $code)" test "$code" -eq 2
  check "run says the folder is read-only" \
    contains "$dir/2run.txt" "--set output=$dir/ro: output: output folder '$dir/ro' is not writable: Read-only file system"
  "$fulcrum" sweep "$experiment" "${tiny[@]}" --set output="$dir/ro" --sweep seeds=0,1 > "$dir/2sweep.txt" 2>&1
  code=$?
  cat "$dir/2sweep.txt"
  check "sweep into a read-only folder exits 2 (got $code)" test "$code" -eq 2
  check "sweep says the folder is read-only" contains "$dir/2sweep.txt" "is not writable: Read-only file system"
  check "sweep does not call it 'running elsewhere'" lacks "$dir/2sweep.txt" "running elsewhere"
  check "nothing was written" test -z "$(ls -A "$dir/ro")"
  # run-trial (what sweep and Slurm launch) on the same folder: exit 2, not 3 ("locked elsewhere").
  "$fulcrum" run-trial "$experiment" --index 0 "${tiny[@]}" --set output="$dir/ro" > "$dir/2trial.txt" 2>&1
  code=$?
  cat "$dir/2trial.txt"
  check "run-trial into a read-only folder exits 2 (got $code)" test "$code" -eq 2

  # 3. A full disk. One tiny trial file is about 300 KB (30 curves of 8 KB
  # chunks) plus its log; while it trains its checkpoint (130 KB, twice while
  # it is replaced) sits beside it, and is removed before the final status
  # is copied in. 700 KB hold one or two trials, not three.
  mount -t tmpfs -o size=700k tmpfs "$dir/full" && mounts+=("$dir/full")
  args=("$experiment" "${tiny[@]}" --set output="$dir/full" --sweep seeds=0,1,2 --jobs 1)
  "$fulcrum" sweep "${args[@]}" > "$dir/3sweep.txt" 2>&1
  code=$?
  cat "$dir/3sweep.txt"
  check "a sweep that fills the disk exits 1 (got $code)" test "$code" -eq 1
  done_before=()
  for f in "$dir/full"/*.h5; do
    [ "$(status "$f")" = completed ] && done_before+=("$(sha256sum "$f")")
  done
  echo "completed before the disk was full: ${#done_before[@]} of 3"
  check "at least one trial completed before the disk was full" test "${#done_before[@]}" -ge 1
  check "not every trial completed on the full disk" test "${#done_before[@]}" -lt 3
  check "the trial that ran out of space says so" grep -qE "No space left on device|no space left" "$dir/3sweep.txt"
  check "sweep: no crash output" no_crash "$dir/3sweep.txt"
  mount -o remount,size=8m "$dir/full"
  "$fulcrum" sweep "${args[@]}" --retry-failed > "$dir/3again.txt" 2>&1
  code=$?
  cat "$dir/3again.txt"
  check "after the disk grows the resumed sweep exits 0 (got $code)" test "$code" -eq 0
  for line in "${done_before[@]}"; do
    check "completed file untouched: ${line#* }" bash -c "echo '$line' | sha256sum --check --quiet"
  done
  n=0
  for f in "$dir/full"/*.h5; do [ "$(status "$f")" = completed ] && n=$((n + 1)); done
  check "3 completed files after the resume (got $n)" test "$n" -eq 3
  check "no staging files left behind" test -z "$(ls "$dir/full" | grep -F '.part-')"

  # 3b. A single run whose result file does not fit (40 KB): a runtime
  # fault, exit 1 (not 2, "bad input"), one clean line in the system's words
  # (not HDF5's two-line record with its byte counts).
  mkdir -p "$dir/tiny"
  if mount -t tmpfs -o size=40k tmpfs "$dir/tiny"; then
    mounts+=("$dir/tiny")
    "$fulcrum" run "$experiment" "${tiny[@]}" --out "$dir/tiny/t.h5" --quiet > "$dir/3b.txt" 2>&1
    code=$?
    cat "$dir/3b.txt"
    check "a full disk while training is exit 1 (got $code)" test "$code" -eq 1
    check "one line of output" test "$(wc -l < "$dir/3b.txt")" -eq 1
    check "it says the disk is full" contains "$dir/3b.txt" "No space left on device"
    check "no HDF5 byte counts or times" bash -c "! grep -qE 'bytes actually written|time = |errno = ' '$dir/3b.txt'"
    check "it says what became of the file" contains "$dir/3b.txt" "the file still says 'running'"
  fi

  # 4. A checkpoint that does not fit: 440 KB hold the trial file (310 KB)
  # and its first checkpoint (130 KB) but not the second one's temporary.
  mkdir -p "$dir/ckpt"
  if mount -t tmpfs -o size=440k tmpfs "$dir/ckpt"; then
    mounts+=("$dir/ckpt")
    "$fulcrum" run "$experiment" "${tiny[@]}" --set train.epochs=3 --out "$dir/ckpt/t.h5" --quiet > "$dir/4run.txt" 2>&1
    code=$?
    cat "$dir/4run.txt"
    check "a checkpoint on a full disk fails the trial with exit 1 (got $code)" test "$code" -eq 1
    check "the failure names the checkpoint and the full disk" \
      contains "$dir/4run.txt" "cannot write checkpoint '$dir/ckpt/t.h5.ckpt': No space left on device"
    check "checkpoint on a full disk: no crash output" no_crash "$dir/4run.txt"
    check "no staging files left behind by the failed checkpoint" test -z "$(ls "$dir/ckpt" | grep -F '.part-')"
    mount -o remount,size=8m "$dir/ckpt"
    "$fulcrum" run "$experiment" "${tiny[@]}" --set train.epochs=3 --out "$dir/ckpt/t.h5" --resume --quiet \
      > "$dir/4resume.txt" 2>&1
    code=$?
    cat "$dir/4resume.txt"
    check "after the disk grows --resume continues from the earlier checkpoint (exit $code)" \
      bash -c "[ $code -eq 0 ] && grep -q 'resumed from checkpoint .* after epoch 1' '$dir/4resume.txt'"
  fi
fi

echo "$passed passed, $failed failed, $skipped parts skipped"
[ "$failed" -eq 0 ]
