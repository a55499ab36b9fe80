#!/usr/bin/env bash
# Datasets from HDF5 files with missing labels, end to end through the CLI:
# writes files with tools/make-funnel-data and h5py (/usr/bin/python3), checks
# the errors a user sees (exit 2, FILE:LINE:COL: key.path: message, no result
# file), a split from /train /val /test groups, a sweep of loss-based and
# gradient-based strategies on the funnel (CVR labelled only where clicked),
# and batches in which the CVR task has no label at all.
#
# Usage: check_file_data.sh FULCRUM_BINARY SOURCE_DIR
set -uo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 FULCRUM_BINARY SOURCE_DIR" >&2
  exit 2
fi
fulcrum=$1
source=$2
python=/usr/bin/python3
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fulcrum-file-data.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
cd "$scratch" || exit 2
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

"$python" "$source/tools/make-funnel-data" data/funnel.h5 --rows 3000 >/dev/null || { echo "FAIL: make-funnel-data"; exit 1; }
"$python" - <<'PY' || { echo "FAIL: writing the test files with h5py"; exit 1; }
import h5py, numpy as np
rng = np.random.default_rng(1)
with h5py.File("data/short.h5", "w") as f:            # a target with fewer rows than the inputs
    f["x"] = rng.standard_normal((100, 3)).astype(np.float32)
    f["y"] = (rng.uniform(size=90) < 0.5).astype(np.int8)
with h5py.File("data/classes.h5", "w") as f:          # a class label out of range at row 7
    f["x"] = rng.standard_normal((20, 3)).astype(np.float32)
    y = rng.integers(0, 2, 20); y[7] = 5; y[3] = -1
    f["y"] = y
with h5py.File("data/groups.h5", "w") as f:           # splits from groups, CVR missing where not clicked
    for name, n in (("train", 400), ("val", 100), ("test", 100)):
        x = rng.standard_normal((n, 4)).astype(np.float32)
        click = (x[:, 0] > 0).astype(np.int8)
        conv = (x[:, 1] > 0).astype(np.int8)
        if name == "test":
            # Identical rows give identical predictions: over the labelled
            # rows (all converted) the accuracy is exactly 0 or 1; counting
            # the unlabelled half would give 0.5.
            x[:] = 0.5
            click = np.arange(n) % 2
            conv = np.ones(n, np.int8)
        f[f"{name}/x"] = x
        f[f"{name}/y_click"] = click
        f[f"{name}/y_conv"] = np.where(click == 1, conv, -1)
PY
echo "not an HDF5 file" >data/text.h5

write_experiment() {  # NAME DATA-MAPPING TASKS [extra lines]: writes NAME.yaml
  cat >"$1.yaml" <<YAML
name: funnel_check
seed: 0
data: $2
tasks: $3
model: {trunk: {kind: mlp, hidden: [16]}}
train: {epochs: 1, batch_size: 64}
strategy: {name: fixed}
${4:-}
YAML
}

binary2='[{name: ctr, kind: binary}, {name: cvr, kind: binary}]'
funnel='{kind: hdf5, path: data/funnel.h5, inputs: /x, targets: {ctr: /y_click, cvr: /y_conv}, standardize: true}'

expect_error() {  # NAME EXPECTED-TEXT
  local name=$1 expect=$2 file=$scratch/$1.yaml
  mkdir -p "out-$name"
  "$fulcrum" run "$file" --out "out-$name/x.h5" --quiet >"$name.stdout" 2>"$name.stderr" </dev/null
  local code=$?
  local stderr
  stderr=$(<"$name.stderr")
  local before=$failures
  if [[ $code -ne 2 ]]; then fail "$name: exit $code, expected 2 ($stderr)"; return; fi
  [[ $stderr == *"$expect"* ]] || fail "$name: stderr lacks '$expect': $stderr"
  [[ $stderr =~ $file:[0-9]+:[0-9]+:\  ]] || fail "$name: no $file:LINE:COL: location: $stderr"
  [[ -z $(ls -A "out-$name") ]] || fail "$name: files were written: $(ls -A "out-$name")"
  if grep -qiE 'terminate called|HDF5-DIAG|backtrace' "$name.stderr" "$name.stdout"; then fail "$name: crash or HDF5 error stack in the output"; fi
  [[ $failures -eq $before ]] && echo "PASS $name"
}

write_experiment missing-dataset '{kind: hdf5, path: data/funnel.h5, inputs: /x, targets: {ctr: /y_click, cvr: /y_conversion}}' "$binary2"
expect_error missing-dataset "data.targets.cvr: no dataset /y_conversion in $scratch/data/funnel.h5; datasets there: /x (3000 × 12), /y_click (3000), /y_conv (3000), /y_ctcvr (3000)"
write_experiment shape-mismatch '{kind: hdf5, path: data/short.h5, inputs: /x, targets: {ctr: /y}}' '[{name: ctr, kind: binary}]'
expect_error shape-mismatch "data.targets.ctr: /y is 90 but the inputs /x are 100 × 3"
write_experiment class-range '{kind: hdf5, path: data/classes.h5, inputs: /x, targets: {kind: /y}}' '[{name: kind, kind: classification, outputs: 2}]'
expect_error class-range "data.targets.kind: /y, row 7: class label 5 of task 'kind' is out of range 0..1"
write_experiment not-hdf5 '{kind: hdf5, path: data/text.h5, inputs: /x, targets: {ctr: /y}}' '[{name: ctr, kind: binary}]'
expect_error not-hdf5 "data.path: $scratch/data/text.h5 is not an HDF5 file that can be read"
write_experiment no-groups '{kind: hdf5, path: data/funnel.h5, split: groups, inputs: /x, targets: {ctr: /y_click}}' '[{name: ctr, kind: binary}]'
expect_error no-groups "data.inputs: no dataset /train/x in"
write_experiment regression-width '{kind: hdf5, path: data/funnel.h5, inputs: /x, targets: {ctr: /y_click}}' '[{name: ctr, kind: regression, outputs: 3}]'
expect_error regression-width "data.targets.ctr: /y_click has 1 values per row, task 'ctr' (regression, outputs 3) needs 3"

# Splits from groups.
write_experiment groups '{kind: hdf5, path: data/groups.h5, split: groups, inputs: x, targets: {ctr: y_click, cvr: y_conv}}' "$binary2"
if "$fulcrum" run groups.yaml --out groups.h5 --quiet >groups.log 2>&1; then
  "$python" - <<'PY' && echo "PASS groups: test metrics over the labelled rows only" || fail "groups: cvr test accuracy"
import h5py
with h5py.File("groups.h5", "r") as f:
    assert f.attrs["status"] == "completed"
    acc = f["epochs/test/cvr/accuracy"][-1]
    assert acc in (0.0, 1.0), acc
PY
else
  fail "groups: $(cat groups.log)"
fi

# Batches of 4 rows: about a quarter have no clicked row, so no CVR label at all.
write_experiment tiny-batches "$funnel" "$binary2"
for strategy in uncertainty gradnorm dwa famo nash_mtl cagrad; do
  if ! "$fulcrum" run tiny-batches.yaml --set strategy.name=$strategy --set train.batch_size=4 \
       --set train.max_steps_per_epoch=150 --out "tiny-$strategy.h5" --quiet >"tiny-$strategy.log" 2>&1; then
    fail "tiny batches, $strategy: $(cat "tiny-$strategy.log")"
    continue
  fi
  "$python" - "tiny-$strategy.h5" <<'PY' || fail "tiny batches, $strategy: file check"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    assert f.attrs["status"] == "completed", f.attrs["status"]
    cvr = f["steps/loss/cvr"][:]
    absent = np.isnan(cvr)
    assert 10 < absent.sum() < len(cvr), f"{absent.sum()} steps without a CVR label of {len(cvr)}"
    assert np.isfinite(f["steps/loss/ctr"][:]).all()
    w = f["steps/weight/cvr"][:]
    assert np.isfinite(w).all()
    for split in ("val", "test"):
        assert np.isfinite(f[f"epochs/{split}/cvr/accuracy"][:]).all()
PY
  echo "PASS tiny batches, $strategy"
done

# The acceptance sweep in small: four loss-based, four gradient-based strategies.
write_experiment sweep "$funnel" "$binary2" "sweep:
  strategy: [{name: fixed}, {name: uncertainty}, {name: gradnorm}, {name: dwa}, {name: mgda}, {name: pcgrad}, {name: cagrad}, {name: nash_mtl}]
output: sweep-out"
if "$fulcrum" sweep sweep.yaml --jobs 2 >sweep.log 2>&1; then echo "PASS sweep"; else fail "sweep: $(tail -20 sweep.log)"; fi
"$fulcrum" compare sweep-out --format csv >compare.csv 2>compare.err || fail "compare: $(cat compare.err)"
for column in ctr/accuracy cvr/accuracy; do
  grep -q "$column" compare.csv || fail "compare lacks $column: $(head -3 compare.csv)"
done
[[ $(grep -c -E '^(fixed|uncertainty|gradnorm|dwa|mgda|pcgrad|cagrad|nash_mtl),' compare.csv) -ge 8 ]] ||
  fail "compare does not list the 8 strategies: $(cat compare.csv)"

if [[ $failures -gt 0 ]]; then
  echo "$failures failed"
  exit 1
fi
echo "all passed"
