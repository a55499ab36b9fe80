#!/usr/bin/env bash
# A trial killed with SIGKILL mid-training leaves a file that `fulcrum show`
# reads, with status running and the curves flushed so far.
# Usage: check_killed_trial.sh FULCRUM EXPERIMENT.yaml
set -u
fulcrum="$1"
experiment="$2"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
file="$dir/killed.h5"

"$fulcrum" run "$experiment" --set train.epochs=1000 --out "$file" --quiet &
pid=$!
# Wait until at least two epochs are flushed (or give up after 60 s).
for _ in $(seq 1 600); do
  sleep 0.1
  if [ -f "$file" ] && "$fulcrum" show "$file" 2>/dev/null | grep -qE 'progress +([2-9]|[1-9][0-9]+) epochs'; then break; fi
done
kill -9 "$pid"
wait "$pid" 2>/dev/null
out="$("$fulcrum" show "$file" 2>&1)"
code=$?
echo "$out"
failed=0
[ $code -eq 0 ] || { echo "FAIL: fulcrum show exited $code"; failed=1; }
echo "$out" | grep -qE 'status +running' || { echo "FAIL: status is not running"; failed=1; }
echo "$out" | grep -qE 'progress +([2-9]|[1-9][0-9]+) epochs' || { echo "FAIL: fewer than 2 epochs flushed"; failed=1; }
if [ $failed -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $failed
