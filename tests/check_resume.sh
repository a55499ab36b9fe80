#!/usr/bin/env bash
# Checkpoints and `fulcrum run --resume` end to end (train.checkpoint_every):
#  1. a trial SIGKILLed after a checkpoint, and one stopped by SIGINT in the
#     middle of an epoch (its file then holds steps past the checkpoint), each
#     continued with --resume: completed, and every curve except the timings
#     equal bit for bit to an uninterrupted run's (h5py); checkpoint removed;
#  2. --resume on a completed trial changes nothing; on a trial without a
#     checkpoint starts over; --resume with --overwrite is refused;
#  3. a checkpoint of another configuration, a truncated one, or one with a
#     flipped byte (caught by its CRC-32): exit 2 naming the checkpoint,
#     result file and checkpoint unchanged; a resume asking for another
#     thread count keeps the checkpoint's;
#  4. a sweep killed while its trials train continues them from their
#     checkpoints: the same files as an uninterrupted sweep.
# Usage: check_resume.sh FULCRUM EXPERIMENT.yaml (gradnorm_toy.yaml)
set -u
fulcrum="$1"
experiment="$2"
source "$(dirname "$0")/lib.sh"

# GradNorm (learned weights, initial losses, its own optimizer state): about
# half a second per epoch here.
trial=("$experiment" --quiet --set data.train_size=6000 --set data.val_size=200 --set data.test_size=200
       --set train.batch_size=50 --set train.epochs=6 --set train.log_gradients_every=7)

# wait_for FILE: waits (up to 60 s) until FILE exists.
wait_for() {
  local i
  for i in $(seq 1 6000); do [ -e "$1" ] && return 0; sleep 0.01; done
  return 1
}

# same_curves A B: every dataset but steps/time/* and epochs/seconds equal bit for bit.
same_curves() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, h5py
def curves(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out
a, b = curves(sys.argv[1]), curves(sys.argv[2])
skip = lambda name: name.startswith("steps/time/") or name == "epochs/seconds"
names = sorted(n for n in a if not skip(n))
differ = [n for n in names if n not in b or a[n].shape != b[n].shape or a[n].tobytes() != b[n].tobytes()]
extra = sorted(n for n in b if not skip(n) and n not in a)
print(f"{len(names)} curves compared, {sum(len(a[n]) for n in names)} values; differ: {differ + extra}")
sys.exit(1 if differ or extra else 0)
PY
}

"$fulcrum" run "${trial[@]}" --out "$dir/reference.h5" > /dev/null 2>&1
check "the uninterrupted reference run completes" test "$(status "$dir/reference.h5")" = completed

# 1a. SIGKILL right after the first or second checkpoint.
"$fulcrum" run "${trial[@]}" --out "$dir/killed.h5" > /dev/null 2>&1 &
pid=$!
wait_for "$dir/killed.h5.ckpt"
sleep 0.$((RANDOM % 5))
kill -9 "$pid" 2>/dev/null
killed=$?
wait "$pid" 2>/dev/null
check "the trial was killed while training" test "$killed" -eq 0
check "the killed trial's file says running" test "$(status "$dir/killed.h5")" = running
check "the killed trial left its checkpoint" test -f "$dir/killed.h5.ckpt"
cp "$dir/killed.h5" "$dir/killed-before.h5"
cp "$dir/killed.h5.ckpt" "$dir/killed-before.ckpt"

# 3. Refused checkpoints leave everything as it was.
"$fulcrum" run "${trial[@]}" --set train.optimizer.lr=0.002 --out "$dir/killed.h5" --resume > "$dir/other.txt" 2>&1
code=$?
check "another configuration: exit 2 (got $code)" test "$code" -eq 2
check "another configuration: named" contains "$dir/other.txt" "checkpoint '$dir/killed.h5.ckpt' was written for another configuration"
check "another configuration: result file unchanged" cmp -s "$dir/killed.h5" "$dir/killed-before.h5"
check "another configuration: checkpoint unchanged" cmp -s "$dir/killed.h5.ckpt" "$dir/killed-before.ckpt"
head -c 3000 "$dir/killed-before.ckpt" > "$dir/killed.h5.ckpt"
"$fulcrum" run "${trial[@]}" --out "$dir/killed.h5" --resume > "$dir/damaged.txt" 2>&1
code=$?
check "damaged checkpoint: exit 2 (got $code)" test "$code" -eq 2
check "damaged checkpoint: named" contains "$dir/damaged.txt" "cannot read checkpoint '$dir/killed.h5.ckpt'"
check "damaged checkpoint: no stack trace" bash -c "! grep -qE 'terminate called|Exception raised from|frame #' '$dir/damaged.txt'"
check "damaged checkpoint: result file unchanged" cmp -s "$dir/killed.h5" "$dir/killed-before.h5"
# A flipped byte inside the archive (LibTorch does not check the zip CRCs):
# refused by fulcrum's CRC-32 before LibTorch reads it.
/usr/bin/python3 -c "import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[len(b) // 2] ^= 1; open(sys.argv[2], 'wb').write(b)" \
  "$dir/killed-before.ckpt" "$dir/killed.h5.ckpt"
"$fulcrum" run "${trial[@]}" --out "$dir/killed.h5" --resume > "$dir/flipped.txt" 2>&1
code=$?
check "flipped checkpoint byte: exit 2 (got $code)" test "$code" -eq 2
check "flipped checkpoint byte: named" contains "$dir/flipped.txt" "cannot read checkpoint '$dir/killed.h5.ckpt': damaged: CRC-32"
check "flipped checkpoint byte: result file unchanged" cmp -s "$dir/killed.h5" "$dir/killed-before.h5"
cp "$dir/killed-before.ckpt" "$dir/killed.h5.ckpt"

# 1a, continued, asking for another thread count: the trial keeps its
# checkpoint's (1), says so, and its file says 1 for the whole trial.
"$fulcrum" run "${trial[@]}" --set train.threads=2 --out "$dir/killed.h5" --resume > "$dir/resume.txt" 2>&1
code=$?
check "resume after SIGKILL: exit 0 (got $code)" test "$code" -eq 0
check "resume after SIGKILL: says where it continues" grep -qE "resumed from checkpoint .*killed.h5.ckpt after epoch [0-9]+" "$dir/resume.txt"
check "resume with train.threads=2: keeps the checkpoint's thread count" \
  contains "$dir/resume.txt" "continues with the 1 thread(s) of checkpoint $dir/killed.h5.ckpt (train.threads asks for 2)"
check "resume with train.threads=2: the file says 1 thread" \
  test "$(/usr/bin/python3 -c "import h5py, sys; print(h5py.File(sys.argv[1], 'r').attrs['threads'])" "$dir/killed.h5")" = 1
check "resume after SIGKILL: completed" test "$(status "$dir/killed.h5")" = completed
check "resume after SIGKILL: checkpoint removed" test ! -e "$dir/killed.h5.ckpt"
check "resume after SIGKILL: curves equal the uninterrupted run's" same_curves "$dir/reference.h5" "$dir/killed.h5"

# 1b. SIGINT in the middle of an epoch after a checkpoint: the file is
# closed with the steps past the checkpoint, which the resume replaces.
"$fulcrum" run "${trial[@]}" --out "$dir/stopped.h5" > /dev/null 2>&1 &
pid=$!
wait_for "$dir/stopped.h5.ckpt"
sleep 0.2
kill -INT "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
check "SIGINT: the file says interrupted" bash -c "'$fulcrum' show '$dir/stopped.h5' | grep -q 'error  *interrupted at step'"
"$fulcrum" run "${trial[@]}" --out "$dir/stopped.h5" --resume > "$dir/resume2.txt" 2>&1
code=$?
check "resume after SIGINT: exit 0 (got $code)" test "$code" -eq 0
check "resume after SIGINT: curves equal the uninterrupted run's" same_curves "$dir/reference.h5" "$dir/stopped.h5"

# 2. Nothing to resume.
sum="$(sha256sum < "$dir/killed.h5")"
"$fulcrum" run "${trial[@]}" --out "$dir/killed.h5" --resume > "$dir/again.txt" 2>&1
code=$?
check "--resume on a completed trial: exit 0 (got $code)" test "$code" -eq 0
check "--resume on a completed trial: says so" contains "$dir/again.txt" "is already completed"
check "--resume on a completed trial: file unchanged" test "$(sha256sum < "$dir/killed.h5")" = "$sum"
"$fulcrum" run "${trial[@]}" --set train.epochs=1 --out "$dir/fresh.h5" --resume > "$dir/fresh.txt" 2>&1
check "--resume without a result file: starts over and completes" test "$(status "$dir/fresh.h5")" = completed
check "--resume without a result file: says so" contains "$dir/fresh.txt" "starting from step 0"
"$fulcrum" run "${trial[@]}" --out "$dir/fresh.h5" --resume --overwrite > "$dir/both.txt" 2>&1
code=$?
check "--resume --overwrite: refused with exit 2 (got $code)" test "$code" -eq 2

# 4. A sweep killed while training, then resumed.
sweep=("$experiment" --set data.train_size=6000 --set data.val_size=200 --set data.test_size=200
       --set train.batch_size=50 --set train.epochs=5 --sweep seeds=0,1 --jobs 2)
"$fulcrum" sweep "${sweep[@]}" --set output="$dir/sweep-reference" > "$dir/sweep-reference.txt" 2>&1
check "reference sweep completes" grep -q "2 of 2 trials completed" "$dir/sweep-reference.txt"
setsid "$fulcrum" sweep "${sweep[@]}" --set output="$dir/sweep" > "$dir/sweep-killed.txt" 2>&1 &
pid=$!
for i in $(seq 1 6000); do ls "$dir/sweep"/*.ckpt > /dev/null 2>&1 && break; sleep 0.01; done
kill -9 -- "-$pid" 2>/dev/null
wait "$pid" 2>/dev/null
check "the sweep was killed with a checkpoint on disk" bash -c "ls '$dir/sweep'/*.ckpt > /dev/null 2>&1"
"$fulcrum" sweep "${sweep[@]}" --set output="$dir/sweep" > "$dir/sweep-resumed.txt" 2>&1
code=$?
check "resumed sweep: exit 0 (got $code)" test "$code" -eq 0
check "resumed sweep: a trial continued from its checkpoint" bash -c "grep -l 'resumed from checkpoint' '$dir/sweep'/*.log > /dev/null"
check "resumed sweep: no checkpoint left" bash -c "! ls '$dir/sweep'/*.ckpt* > /dev/null 2>&1"
for reference in "$dir/sweep-reference"/*.h5; do
  check "resumed sweep: $(basename "$reference") equals the uninterrupted sweep's" \
    same_curves "$reference" "$dir/sweep/$(basename "$reference")"
done
finish
