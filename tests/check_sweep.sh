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
#     lists it as interrupted (so a rerun redoes it);
#  6. never replace what is not shown damaged: copies of 1.'s files with a
#     newer schema_version, another trial's configuration, malformed curves,
#     a truncated file whose .log is a symlink, and a symlink loop; sweeps as
#     root, with a screening timeout and as an unprivileged user (no read
#     permission) leave every file as it was; status and compare read them
#     alike;
#  7. the folder deleted while the sweep runs: the summary says so;
#  8. every writer holds the lock: status on a trial that `run` trains, a
#     sweep on it, and run --overwrite / --resume on a sweep child's file;
#     `sweep | head -1` (SIGPIPE) ends its running trial interrupted.
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


# 6. Completed files that cannot be read for a reason other than damage are
# reported and left alone; only a damaged file may be redone. Copies of 1.'s
# files keep their trial ids (`output` is not part of a configuration).
mix="$dir/six"
cp -r "$dir/one" "$mix"
rm -f "$mix"/*.lock "$mix"/*.log
plan=("$experiment" "${tiny[@]}" --set output="$mix"
      --sweep 'strategy={name: gradnorm, alpha: 0.12},{name: dwa}' --sweep seeds=0,1)
f=()  # in the plan's order
for trial in gradnorm-seed0 gradnorm-seed1 dwa-seed0 dwa-seed1; do f+=("$(ls "$mix"/*-$trial-*.h5)"); done
ids=()
for file in "${f[@]}"; do id="${file%.h5}"; ids+=("${id##*-}"); done
/usr/bin/python3 - "${f[0]}" "${f[2]}" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "a") as h:   # a newer layout than this build reads
    h.attrs["schema_version"] = 2
with h5py.File(sys.argv[2], "a") as h:   # completed, but one curve longer than its group
    d = h["epochs/seconds"]
    d.resize((d.shape[0] + 1,))
PY
cp "${f[3]}" "${f[1]}"                  # another trial's configuration under #1's name
head -c 3000 "${f[3]}" > "$dir/cut" && mv "$dir/cut" "${f[3]}"   # damaged: truncated
echo precious > "$dir/precious.txt"
ln -s "$dir/precious.txt" "${f[3]}.log"  # a redo must not write through it
ln -s loop.h5 "$mix/loop.h5"
touch "$mix/loop.h5.lock"
sums="$(sha256sum "${f[@]}")"
unchanged() { echo "$sums" | sha256sum --check --quiet; }
"$fulcrum" sweep "${plan[@]}" --jobs 2 > "$dir/six.txt" 2>&1
code=$?
cat "$dir/six.txt"
check "sweep over unreadable files exits 1 (got $code)" test "$code" -eq 1
check "sweep: 0 of 4 completed" grep -q "0 of 4 trials completed" "$dir/six.txt"
check "sweep: a newer schema_version is unreadable" \
  grep -qE "^  #0 .*: unreadable: .*schema_version 2 is not supported" "$dir/six.txt"
check "sweep: another configuration under the name is foreign" \
  grep -qE "^  #1 .*: foreign: .*holds another trial \(configuration id ${ids[3]}, seed 1\)" "$dir/six.txt"
check "sweep: malformed curves are unreadable" \
  grep -qE "^  #2 .*: unreadable: .*curve 'epochs/seconds' holds 2 values where 'epochs/epoch' holds 1" "$dir/six.txt"
check "sweep: the damaged file's symlinked log is refused" grep -qE "^  #3 .*is a symbolic link" "$dir/six.txt"
check "sweep: the log's target is untouched" test "$(cat "$dir/precious.txt")" = precious
check "sweep: every file unchanged" unchanged
"$fulcrum" status "$mix" > "$dir/six-status.txt" 2>&1
code=$?
cat "$dir/six-status.txt"
check "status exits 1 (got $code)" test "$code" -eq 1
check "status: the symlink loop is one row, the listing goes on" \
  grep -qE "^unreadable +loop.h5 .*Too many levels of symbolic links" "$dir/six-status.txt"
check "status: states by file" bash -c "grep -qE '^unreadable +${f[0]##*/} ' '$dir/six-status.txt' &&
  grep -qE '^foreign +${f[1]##*/} ' '$dir/six-status.txt' && grep -qE '^unreadable +${f[2]##*/} ' '$dir/six-status.txt' &&
  grep -qE '^damaged +${f[3]##*/} ' '$dir/six-status.txt'"
check "status: summary" grep -q "5 trials: 0 completed, .* 1 damaged, 3 unreadable, 1 foreign" "$dir/six-status.txt"
"$fulcrum" compare "$mix" > "$dir/six-compare.txt" 2>&1
check "compare leaves out the malformed file with status's reason" \
  grep -qF "curve 'epochs/seconds' holds 2 values where 'epochs/epoch' holds 1" "$dir/six-compare.txt"
FULCRUM_SCREEN_TIMEOUT=0.000001 "$fulcrum" sweep "${plan[@]}" --jobs 2 > "$dir/six-timeout.txt" 2>&1
code=$?
check "screening timeout: exit 1 (got $code)" test "$code" -eq 1
check "screening timeout: every trial unreadable, said so" \
  test "$(grep -cE '^  #[0-3] .*: unreadable: .*did not finish reading it within' "$dir/six-timeout.txt")" -eq 4
check "screening timeout: not read as an exit code" bash -c "! grep -q 'exit code 0' '$dir/six-timeout.txt'"
check "screening timeout: every file unchanged" unchanged
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
if "${nobody[@]}" true 2> /dev/null; then
  chmod 755 "$dir" && chmod 777 "$mix" && chmod 000 "${f[1]}"
  "${nobody[@]}" "$fulcrum" sweep "${plan[@]}" --jobs 2 > "$dir/six-nobody.txt" 2>&1
  chmod 644 "${f[1]}"
  check "no read permission: unreadable, said so" \
    grep -qE "^  #1 .*: unreadable: .*cannot open for reading \(Permission denied\)" "$dir/six-nobody.txt"
  check "no read permission: every file unchanged" unchanged
else
  echo "skipped: cannot run $fulcrum as an unprivileged user"
fi

# 7. The folder deleted while the sweep runs: the summary reads the files again.
gone="$dir/seven"
cp -r "$dir/one" "$gone"
rm -f "$gone"/*.lock "$gone"/*.log "$gone"/*-"${ids[3]}".h5
"$fulcrum" sweep "${plan[@]}" --set output="$gone" --jobs 1 > "$dir/seven.txt" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  sleep 0.05
  ls "$gone"/*.h5.log > /dev/null 2>&1 && break
done
rm -rf "$gone"
wait "$pid"
code=$?
cat "$dir/seven.txt"
check "deleted folder: exit 1 (got $code)" test "$code" -eq 1
check "deleted folder: not 4 of 4 completed" bash -c "! grep -q '4 of 4 trials completed' '$dir/seven.txt'"
check "deleted folder: the kept trials are reported missing" \
  test "$(grep -c 'completed earlier in this sweep, but the file is now missing' "$dir/seven.txt")" -ge 3

# 8. Every writer holds the trial's lock. X: `fulcrum run` on a sweep trial's
# file; L: a sweep child, its sweep's stdout closed (as by `| head`) before
# the sweep's next line, which the crash of its other child S prints.
live="$dir/eight"
mkdir -p "$live"
xplan=("$experiment" "${tiny[@]}" --set train.epochs=2000 --set output="$live" --set 'strategy={name: fixed}')
xid="$("$fulcrum" sweep "${xplan[@]}" --dry-run | awk '$1 == "0" {print $2}')"
x="$live/gradnorm_toy-fixed-seed0-$xid.h5"
"$fulcrum" run "${xplan[@]}" --out "$x" --quiet > "$dir/eight-run.txt" 2>&1 &
runpid=$!
pipe="$dir/eight-pipe"
lplan=("$experiment" "${tiny[@]}" --set train.epochs=2000 --set output="$pipe" --set 'strategy={name: dwa}')
mkfifo "$dir/fifo"
"$fulcrum" sweep "${lplan[@]}" --sweep seeds=0,1 --jobs 2 > "$dir/fifo" 2> "$dir/eight-sweep.txt" &
sweeppid=$!
head -2 < "$dir/fifo" > /dev/null &  # the first line and the first progress line
for _ in $(seq 1 300); do
  sleep 0.05
  [ -f "$x" ] && ls "$pipe"/*-seed0-*.h5 "$pipe"/*-seed1-*.h5 > /dev/null 2>&1 && break
done
l="$(ls "$pipe"/*-seed0-*.h5)"
"$fulcrum" run "${lplan[@]}" --out "$l" --overwrite --quiet > "$dir/eight-over.txt" 2>&1
code=$?
check "run --overwrite on a file a sweep child writes: exit 3 (got $code)" test "$code" -eq 3
check "run --overwrite on it: running elsewhere" contains "$dir/eight-over.txt" "is running elsewhere"
"$fulcrum" run "${lplan[@]}" --out "$l" --resume --quiet > "$dir/eight-resume.txt" 2>&1
code=$?
check "run --resume on a sweep child's checkpoint: exit 3 (got $code)" test "$code" -eq 3
"$fulcrum" status "$live" > "$dir/eight-status.txt" 2>&1
cat "$dir/eight-status.txt"
check "status: the trial run trains is running, not stale" grep -qE "^running +${x##*/} " "$dir/eight-status.txt"
"$fulcrum" sweep "${xplan[@]}" > "$dir/eight-sweep-x.txt" 2>&1
code=$?
check "a sweep on the trial run trains: exit 1 (got $code)" test "$code" -eq 1
check "a sweep on the trial run trains: running elsewhere" grep -q "#0 $xid .*running elsewhere" "$dir/eight-sweep-x.txt"
kill -9 $(pgrep -P "$sweeppid" -f -- '--index 1 ')
wait "$sweeppid"
code=$?
cat "$dir/eight-sweep.txt"
check "sweep with its stdout closed: exits non-zero (got $code)" test "$code" -ne 0
kill -INT "$runpid"
wait "$runpid"
"$fulcrum" show "$l" "$x" > "$dir/eight-show.txt" 2>&1
check "the sweep's running trial and the run end interrupted (resumable)" \
  test "$(grep -cE '^  error +interrupted at step [0-9]+' "$dir/eight-show.txt")" -eq 2

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
