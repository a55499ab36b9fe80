#!/usr/bin/env bash
# Garbage where result files or gradient CSVs should be: `show`, `compare`,
# `export` and `status` report each bad file by name and go on with the good
# one (no crash, no stack trace); `probe` rejects junk CSVs with exit 2.
#   trial files: random bytes named .h5, a truncated HDF5 file, an empty
#   file, a directory named x.h5, a text file, an HDF5 file that is not a
#   trial file (written by h5py), a trial file whose status attribute is an
#   integer, and a symlink to nowhere;
#   CSVs: binary junk, NUL bytes, an empty file, a directory, a missing file,
#   a number too large for a double, and a huge single line.
# Usage: check_garbage_files.sh FULCRUM EXPERIMENT.yaml (gradnorm_toy.yaml)
set -u
fulcrum="$1"
experiment="$2"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
passed=0
failed=0
inputs=0
check() {  # check DESCRIPTION COMMAND...
  local what="$1"; shift
  if "$@"; then passed=$((passed + 1)); else echo "FAIL: $what"; failed=$((failed + 1)); fi
}
no_crash() { ! grep -qiE 'terminate called|backtrace|frame #|core dumped|Segmentation|Aborted' "$1"; }

out="$dir/trials"
mkdir -p "$out"
"$fulcrum" run "$experiment" --set data.train_size=200 --set data.val_size=50 --set data.test_size=50 \
  --set 'model.trunk.hidden=[16, 16]' --set train.batch_size=50 --set train.epochs=2 \
  --set 'strategy={name: fixed}' --out "$out/good.h5" --quiet > /dev/null 2>&1
check "the good trial completed" test -f "$out/good.h5"
good="$out/good.h5"

head -c 4096 /dev/urandom > "$out/random.h5"
head -c "$(( $(stat -c %s "$good") / 3 ))" "$good" > "$out/truncated.h5"
: > "$out/empty.h5"
mkdir "$out/x.h5"
echo "this is not HDF5" > "$out/text.h5"
ln -s "$dir/nowhere.h5" "$out/dangling.h5"
/usr/bin/python3 - "$out" "$good" <<'EOF'
import shutil, sys, h5py
out, good = sys.argv[1], sys.argv[2]
with h5py.File(f"{out}/plain.h5", "w") as f:   # HDF5, but not a trial file
    f["data"] = [1.0, 2.0]
shutil.copy(good, f"{out}/odd-status.h5")      # a trial file with a wrong attribute type
with h5py.File(f"{out}/odd-status.h5", "a") as f:
    del f.attrs["status"]
    f.attrs["status"] = 7
EOF
bad=(random.h5 truncated.h5 empty.h5 x.h5 text.h5 dangling.h5 plain.h5)
inputs=$((inputs + ${#bad[@]} + 1))

# show: one call with every file; each bad one named, the good one shown.
files=("$good")
for name in "${bad[@]}"; do files+=("$out/$name"); done
"$fulcrum" show "${files[@]}" > "$dir/show.txt" 2>&1
code=$?
check "show exits 2 when some file is bad (got $code)" test "$code" -eq 2
check "show prints the good file" grep -qE '^  status +completed$' "$dir/show.txt"
for name in "${bad[@]}"; do
  check "show names $name" grep -qF "$out/$name:" "$dir/show.txt"
done
check "show: no crash output" no_crash "$dir/show.txt"
"$fulcrum" show "$out/odd-status.h5" > "$dir/show-odd.txt" 2>&1
code=$?
check "show reads or rejects a file with an integer status, exit 0 or 2 (got $code)" test "$code" -le 2
check "show odd-status: no crash output" no_crash "$dir/show-odd.txt"
inputs=$((inputs + 1))

# compare: the good trial in the table; every bad file listed as not included; exit 1.
"$fulcrum" compare "$out" > "$dir/compare.txt" 2>&1
code=$?
cat "$dir/compare.txt"
check "compare exits 1 (something left out; got $code)" test "$code" -eq 1
check "compare shows the good trial's configuration" grep -q 'fixed' "$dir/compare.txt"
for name in random.h5 truncated.h5 empty.h5 text.h5 plain.h5 odd-status.h5; do
  check "compare names $name" grep -qF "$name" "$dir/compare.txt"
done
check "compare: no crash output" no_crash "$dir/compare.txt"

# export: rows of the good trial on stdout, each bad file reported on stderr; exit 1.
"$fulcrum" export "$out" > "$dir/export.csv" 2> "$dir/export.err"
code=$?
cat "$dir/export.err"
check "export exits 1 (got $code)" test "$code" -eq 1
check "export writes the good trial's rows" grep -q '^good,completed,' "$dir/export.csv"
for name in random.h5 truncated.h5 empty.h5 text.h5 plain.h5; do
  check "export reports $name" grep -qF "$name" "$dir/export.err"
done
check "export: no crash output" no_crash "$dir/export.err"
"$fulcrum" export "$out" --what summary --format jsonl > "$dir/export.jsonl" 2> "$dir/export-summary.err"
code=$?
check "export --what summary exits 1 (got $code)" test "$code" -eq 1
check "export --what summary: no crash output" no_crash "$dir/export-summary.err"

# status: bad files are corrupt, the good one completed; exit 1.
"$fulcrum" status "$out" > "$dir/status.txt" 2>&1
code=$?
cat "$dir/status.txt"
check "status exits 1 (got $code)" test "$code" -eq 1
check "status: no crash output" no_crash "$dir/status.txt"

# probe: junk gradient CSVs, exit 2 with a message naming the file.
probe_rejects() {  # probe_rejects NAME FILE [EXPECTED]
  local name="$1" file="$2" expected="${3:-}"
  inputs=$((inputs + 1))
  "$fulcrum" probe mgda --grads "$file" > "$dir/probe.out" 2> "$dir/probe.err"
  local code=$?
  check "probe $name exits 2 (got $code: $(head -c 300 "$dir/probe.err"))" test "$code" -eq 2
  check "probe $name names the file" grep -qF "$file" "$dir/probe.err"
  [ -z "$expected" ] || check "probe $name says '$expected'" grep -qF -- "$expected" "$dir/probe.err"
  check "probe $name: no crash output" no_crash "$dir/probe.err"
}
csv="$dir/csv"
mkdir -p "$csv"
head -c 2048 /dev/urandom > "$csv/binary.csv"
probe_rejects binary-junk "$csv/binary.csv"
printf '1,0\n0,\0001\n' > "$csv/nul.csv"
probe_rejects nul-bytes "$csv/nul.csv" "is not a number"
: > "$csv/empty.csv"
probe_rejects empty "$csv/empty.csv"
mkdir "$csv/folder.csv"
probe_rejects directory "$csv/folder.csv"
probe_rejects missing "$csv/missing.csv"
printf '1e999,0\n0,1\n' > "$csv/overflow.csv"
probe_rejects overflow "$csv/overflow.csv"
/usr/bin/python3 -c "print(','.join(['1'] * 2000000)); print('1')" > "$csv/ragged-huge.csv"
probe_rejects huge-ragged "$csv/ragged-huge.csv" ragged

echo "inputs tried: $inputs garbage files"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
