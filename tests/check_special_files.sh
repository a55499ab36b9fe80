#!/usr/bin/env bash
# Paths that are not regular files: fulcrum reads only regular files and
# replaces nothing else. FIFOs stand at every path fulcrum opens (experiment
# file, data.path of csv and hdf5 data, the checkpoint, probe's CSVs, result
# files given to show/compare/export): each command must answer at once
# (exit 2; 1 for compare, which lists it as not included), under a SIGTERM
# deadline of 20 s, instead of blocking in open(). `--out` naming a FIFO, a
# folder or a symbolic link is refused and the thing left as it was. Only
# FIFOs and links made here are used, never a real device node (CI runs as
# root, and /dev/null would be replaced).
# Usage: check_special_files.sh FULCRUM EXPERIMENT.yaml (gradnorm_toy.yaml)
set -u
fulcrum="$1"
experiment="$2"
source "$(dirname "$0")/lib.sh"

tiny=(--set data.train_size=200 --set data.val_size=50 --set data.test_size=50
      --set 'model.trunk.hidden=[16, 16]' --set train.batch_size=50 --set train.epochs=2
      --set 'strategy={name: fixed}' --set train.log_gradients_every=0)

# answers EXPECTED NAME COMMAND...: COMMAND exits EXPECTED well before the deadline.
answers() {
  local expected="$1" name="$2"; shift 2
  timeout -s TERM 20 "$@" > "$dir/$name.txt" 2>&1
  local code=$?
  cat "$dir/$name.txt"
  check "$name: exits $expected, not blocked (got $code)" test "$code" -eq "$expected"
}

mkfifo "$dir/experiment.yaml" "$dir/data.csv" "$dir/data.h5" "$dir/grads.csv" "$dir/losses.csv" \
  "$dir/result.h5" "$dir/out-fifo.h5"
printf '1,0\n0,1\n' > "$dir/good-grads.csv"

answers 2 experiment-fifo "$fulcrum" run "$dir/experiment.yaml"
check "experiment FIFO: says what it is" contains "$dir/experiment-fifo.txt" "is a FIFO"

cat > "$dir/csv.yaml" <<EOF
name: special
output: $dir/out
data: {kind: csv, path: $dir/data.csv, targets: {y: y}}
tasks: [{name: y, kind: regression}]
strategy: {name: fixed}
EOF
answers 2 csv-fifo "$fulcrum" run "$dir/csv.yaml"
check "csv FIFO: located at data.path" contains "$dir/csv-fifo.txt" "data.path: $dir/data.csv is a FIFO"
sed -e "s|kind: csv, path: $dir/data.csv|kind: hdf5, path: $dir/data.h5, inputs: /x|" \
  -e 's|targets: {y: y}|targets: {y: /y}|' "$dir/csv.yaml" > "$dir/h5.yaml"
answers 2 hdf5-fifo "$fulcrum" run "$dir/h5.yaml"
check "hdf5 FIFO: located at data.path" contains "$dir/hdf5-fifo.txt" "data.path: $dir/data.h5 is a FIFO"

answers 2 grads-fifo "$fulcrum" probe fixed --grads "$dir/grads.csv"
answers 2 losses-fifo "$fulcrum" probe fixed --grads "$dir/good-grads.csv" --losses "$dir/losses.csv"

answers 2 show-fifo "$fulcrum" show "$dir/result.h5"
answers 1 compare-fifo "$fulcrum" compare "$dir/result.h5"
check "compare: the FIFO is not included" contains "$dir/compare-fifo.txt" "not a regular file"

# The checkpoint beside a result: a FIFO there is refused before the resume reads it.
mkdir -p "$dir/ck"
mkfifo "$dir/ck/t.h5.ckpt"
answers 2 checkpoint-fifo-resume "$fulcrum" run "$experiment" "${tiny[@]}" --out "$dir/ck/t.h5" --resume --quiet
answers 2 checkpoint-fifo-run "$fulcrum" run "$experiment" "${tiny[@]}" --out "$dir/ck/t.h5" --quiet
check "checkpoint FIFO: still a FIFO" test -p "$dir/ck/t.h5.ckpt"
check "checkpoint FIFO: no result file" test ! -e "$dir/ck/t.h5"

# --out onto things that are not regular files: refused, left as they were.
answers 2 out-fifo "$fulcrum" run "$experiment" "${tiny[@]}" --out "$dir/out-fifo.h5" --overwrite --quiet
check "--out FIFO: still a FIFO" test -p "$dir/out-fifo.h5"
mkdir -p "$dir/a-folder.h5"
answers 2 out-folder "$fulcrum" run "$experiment" "${tiny[@]}" --out "$dir/a-folder.h5" --overwrite --quiet
check "--out folder: still a folder" test -d "$dir/a-folder.h5"
echo keep > "$dir/target.txt"
ln -s "$dir/target.txt" "$dir/link.h5"
answers 2 out-symlink "$fulcrum" run "$experiment" "${tiny[@]}" --out "$dir/link.h5" --overwrite --quiet
check "--out symlink: still a link" test -L "$dir/link.h5"
check "--out symlink: its target untouched" test "$(cat "$dir/target.txt")" = keep
check "--out symlink: says what it is" contains "$dir/out-symlink.txt" "is a symbolic link"

finish
