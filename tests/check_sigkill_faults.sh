#!/usr/bin/env bash
# SIGKILL at random moments (seeded, so a failure can be replayed):
#  1. single trials (`fulcrum run`), killed at random times from start-up to
#     just after the end (short and long trials, so that the kill falls in
#     start-up, file creation, training, and the final status): every result
#     file present is readable by `fulcrum show` and by h5py, with status
#     running or completed; no staging file is left under a *.h5 name;
#  2. a sweep (runner and its children, as a crash would) killed again and
#     again at random moments, each time resumed: after every kill no file is
#     damaged or unreadable (`fulcrum status`); at the end one completed file per trial, no
#     duplicates, no staging files, and the files completed before the last
#     resume are untouched.
# Prints the inputs tried and faults injected.
# Usage: check_sigkill_faults.sh FULCRUM EXPERIMENT.yaml (gradnorm_toy.yaml) [SEED]
set -u
fulcrum="$1"
experiment="$2"
RANDOM="${3:-20261123}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
passed=0
failed=0
faults=0
inputs=0
check() {  # check DESCRIPTION COMMAND...
  local what="$1"; shift
  if "$@"; then passed=$((passed + 1)); else echo "FAIL: $what"; failed=$((failed + 1)); fi
}
# sleep_ms N: sleep N milliseconds.
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

tiny=(--set data.train_size=200 --set data.val_size=50 --set data.test_size=50
      --set 'model.trunk.hidden=[16, 16]' --set train.batch_size=50)
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Kill moments are drawn relative to how long a short trial takes here and
# now (start-up dominates, and the machine may be busy).
mkdir -p "$dir/single"
start=$(now_ms)
"$fulcrum" run "$experiment" "${tiny[@]}" --set train.epochs=3 --set 'strategy={name: dwa}' \
  --out "$dir/calibration.h5" --quiet > /dev/null 2>&1
short=$(( $(now_ms) - start ))
echo "a 3-epoch trial takes ${short} ms here"

# 1. Single trials.
singles=0
single_faults=0
# At least 12 kills, whatever the machine's speed (a run may end before its kill).
for i in $(seq 1 24); do
  [ "$single_faults" -ge 12 ] && break
  singles=$((singles + 1))
  # One run in three ends by itself after 3 epochs (kills land around its
  # end, in the final status); the others train 300 epochs.
  epochs=$(( i % 3 == 1 ? 3 : 300 ))
  # From early start-up to a little after the short trial's end.
  delay=$(( short / 10 + RANDOM * short * 13 / 10 / 32768 ))
  "$fulcrum" run "$experiment" "${tiny[@]}" --quiet --set train.epochs=$epochs --set 'strategy={name: dwa}' \
    --out "$dir/single/t$i.h5" > /dev/null 2>&1 &
  pid=$!
  sleep_ms "$delay"
  inputs=$((inputs + 1))
  if kill -9 "$pid" 2>/dev/null; then
    faults=$((faults + 1))
    single_faults=$((single_faults + 1))
    echo "single $i: epochs $epochs, SIGKILL after ${delay} ms"
  else
    echo "single $i: epochs $epochs, finished before ${delay} ms"
  fi
  wait "$pid" 2>/dev/null
done
files=("$dir/single"/*.h5)
[ -e "${files[0]}" ] || files=()
echo "single trials: ${#files[@]} of $singles left a result file"
if [ "${#files[@]}" -gt 0 ]; then
  "$fulcrum" show "${files[@]}" > "$dir/show.txt" 2>&1
  code=$?
  check "fulcrum show reads every killed trial's file (exit $code)" test "$code" -eq 0
  check "every file says running or completed" \
    test "$(grep -cE '^  status +(running|completed)$' "$dir/show.txt")" -eq "${#files[@]}"
  /usr/bin/python3 - "${files[@]}" > "$dir/h5py.txt" 2>&1 <<'EOF'
import sys, h5py
bad = 0
for path in sys.argv[1:]:
    try:
        with h5py.File(path, "r", swmr=True) as f:
            status = f.attrs["status"]
            steps = f["steps/step"][:]
            assert status in ("running", "completed"), status
            assert (steps == range(len(steps))).all(), "steps not 0..n-1"
    except Exception as e:
        bad += 1
        print(f"{path}: {e}")
print(f"h5py: {len(sys.argv) - 1 - bad} readable, {bad} unreadable")
sys.exit(1 if bad else 0)
EOF
  code=$?
  cat "$dir/h5py.txt"
  check "h5py reads every killed trial's file" test "$code" -eq 0
fi
check "no staging file under a .h5 name" test -z "$(ls "$dir/single" | grep -E '\.h5$' | grep -F '.part-')"

# 2. A sweep killed again and again, resumed each time.
out="$dir/sweep"
args=("$experiment" "${tiny[@]}" --set output="$out" --set train.epochs=4
      --sweep 'strategy={name: fixed},{name: uncertainty}' --sweep seeds=0,1 --jobs 2)
kills=0
sweep_faults=0
for k in $(seq 1 16); do
  [ "$sweep_faults" -ge 8 ] && break
  kills=$((kills + 1))
  # 4 trials of 4 epochs, 2 at a time: about two short-trial times in all.
  delay=$(( short / 5 + RANDOM * short * 8 / 5 / 32768 ))
  setsid "$fulcrum" sweep "${args[@]}" > "$dir/sweep-$k.txt" 2>&1 &
  pid=$!
  sleep_ms "$delay"
  inputs=$((inputs + 1))
  if kill -9 -- "-$pid" 2>/dev/null; then
    faults=$((faults + 1))
    sweep_faults=$((sweep_faults + 1))
    echo "sweep $k: SIGKILL to runner and trials after ${delay} ms"
  else
    echo "sweep $k: finished before ${delay} ms"
  fi
  wait "$pid" 2>/dev/null
  sleep 0.1
  if [ -d "$out" ]; then
    "$fulcrum" status "$out" > "$dir/status-$k.txt" 2>&1
    corrupt=$(grep -oE '[0-9]+ damaged, [0-9]+ unreadable' "$dir/status-$k.txt")
    check "after kill $k no trial file is damaged or unreadable (status: ${corrupt:-no summary})" \
      test "$corrupt" = "0 damaged, 0 unreadable"
  fi
done
before=()
for f in "$out"/*.h5; do
  [ -f "$f" ] || continue
  "$fulcrum" show "$f" 2>/dev/null | grep -qE '^  status +completed$' && before+=("$(sha256sum "$f")")
done
echo "completed before the last resume: ${#before[@]} of 4"
"$fulcrum" sweep "${args[@]}" > "$dir/sweep-final.txt" 2>&1
code=$?
inputs=$((inputs + 1))
cat "$dir/sweep-final.txt"
check "the resumed sweep exits 0 (got $code)" test "$code" -eq 0
check "the resumed sweep reports 4 of 4 completed" grep -q "4 of 4 trials completed" "$dir/sweep-final.txt"
"$fulcrum" status "$out" > "$dir/status-final.txt" 2>&1
check "fulcrum status: 4 trials, 4 completed" grep -q '^4 trials: 4 completed,' "$dir/status-final.txt"
check "exactly 4 result files (got $(ls "$out"/*.h5 | wc -l))" test "$(ls "$out"/*.h5 | wc -l)" -eq 4
check "4 distinct trial ids" test "$(ls "$out"/*.h5 | sed -E 's/.*-([0-9a-f]{12})\.h5$/\1/' | sort -u | wc -l)" -eq 4
check "no staging files left" test -z "$(ls "$out" | grep -F '.part-')"
for line in "${before[@]}"; do
  check "completed file untouched by the resume: ${line#* }" bash -c "echo '$line' | sha256sum --check --quiet"
done

check "at least 20 faults injected (got $faults)" test "$faults" -ge 20
echo "inputs tried: $inputs ($singles single trials, $((kills + 1)) sweep runs); faults injected: $faults SIGKILLs"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
