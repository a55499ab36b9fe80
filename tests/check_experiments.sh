#!/usr/bin/env bash
# Every experiment file shipped in experiments/ is valid as a user would run
# it: `fulcrum sweep FILE --dry-run` (which parses the file, expands the sweep
# and opens the data) for training experiments, a 2-step `fulcrum landscape`
# for landscape ones. The funnel experiment's data file is written first, as
# tools/funnel does, into a scratch copy of the folder.
# Usage: check_experiments.sh FULCRUM SOURCE_DIR
set -u
fulcrum="$1"
source_dir="$2"
. "$(dirname "$0")/lib.sh"
cp -r "$source_dir/experiments" "$dir/experiments"
/usr/bin/python3 "$source_dir/tools/make-funnel-data" "$dir/experiments/data/funnel.h5" --rows 2000 \
  >/dev/null || { echo "FAIL: make-funnel-data"; exit 1; }
# runs COMMAND quietly; shows its output when it fails
quietly() { "$@" >"$dir/out.txt" 2>&1 || { cat "$dir/out.txt"; return 1; }; }
count=0
for file in "$dir"/experiments/*.yaml; do
  name="$(basename "$file")"
  count=$((count + 1))
  if grep -q '^landscape:' "$file"; then
    check "$name: fulcrum landscape --steps 2" \
      quietly "$fulcrum" landscape "$file" --steps 2 --out "$dir/$name.h5"
  else
    check "$name: fulcrum sweep --dry-run" quietly "$fulcrum" sweep "$file" --dry-run
  fi
done
check "found the experiment files" test "$count" -ge 8
finish
