#!/usr/bin/env bash
# train.save_model and `fulcrum evaluate` as a user runs them: a tiny
# gradnorm_toy trial that stops early saves <result>.best.pt and .final.pt
# beside its file; evaluate scores each on a split and its numbers are the
# trial file's at that epoch; a model of other widths, a damaged file and a
# bad --split are refused with exit 2 and a message, never a stack trace.
# Usage: check_evaluate.sh FULCRUM
set -u
fulcrum="$1"
python=/usr/bin/python3
source "$(dirname "$0")/lib.sh"

cat > "$dir/e.yaml" <<YAML
name: e
output: $dir/out
data: {kind: gradnorm_toy, train_size: 200, val_size: 50, test_size: 50}
model: {trunk: {kind: mlp, hidden: [16, 16]}}
train:
  epochs: 8
  batch_size: 50
  log_gradients_every: 0
  early_stopping: {metric: task0/mse, patience: 2}
  save_model: both
strategy: {name: fixed}
YAML
"$fulcrum" run "$dir/e.yaml" --quiet > "$dir/run.txt" 2>&1
code=$?
cat "$dir/run.txt"
check "the trial completes (got $code)" test "$code" -eq 0
result="$dir/out/e-fixed-seed0.h5"
check "the best model is saved beside the result file" test -f "$dir/out/e-fixed-seed0.best.pt"
check "the final model is saved beside the result file" test -f "$dir/out/e-fixed-seed0.final.pt"

for which in best final; do
  "$fulcrum" evaluate "$dir/e.yaml" --model "$dir/out/e-fixed-seed0.$which.pt" --split all --format json \
    > "$dir/$which.json" 2> "$dir/$which.err"
  code=$?
  check "evaluate --model $which exits 0 (got $code)" test "$code" -eq 0
  "$python" - "$dir/$which.json" "$result" "$which" <<'PY'
import json, sys, h5py, numpy
scores = json.load(open(sys.argv[1]))
with h5py.File(sys.argv[2], "r") as f:
    val = f["epochs/val/task0/mse"][:]
    epochs = len(f["epochs/epoch"][:])
    index = int(numpy.nanargmin(val)) if sys.argv[3] == "best" else epochs - 1
    assert scores["epoch"] == index + 1, (scores["epoch"], index)
    for split in ("val", "test"):
        for task in ("task0", "task1"):
            for metric in ("mse", "mae"):
                logged = f[f"epochs/{split}/{task}/{metric}"][index]
                got = scores["splits"][split][task][metric]
                assert abs(got - logged) <= 1e-12 * max(1.0, abs(logged)), (split, task, metric, got, logged)
PY
  check "evaluate's $which numbers are the trial file's of that epoch" test "$?" -eq 0
done

"$fulcrum" evaluate "$dir/e.yaml" --model "$dir/out/e-fixed-seed0.best.pt" > "$dir/table.txt" 2>&1
check "the table names the model and its epoch" grep -qE "the best model \(epoch [0-9]+, val task0/mse " "$dir/table.txt"
check "the table lists the test split" grep -q "^test (50 examples):" "$dir/table.txt"

refused() {  # refused DESCRIPTION MESSAGE ARGS...
  local what="$1" message="$2"; shift 2
  "$fulcrum" evaluate "$@" > "$dir/refused.txt" 2>&1
  local code=$?
  check "$what: exit 2 (got $code)" test "$code" -eq 2
  check "$what: says why" contains "$dir/refused.txt" "$message"
  check "$what: no stack trace" bash -c "! grep -qiE 'terminate called|frame #|Exception raised' '$dir/refused.txt'"
}
refused "other widths" "does not fit the model of this experiment" \
  "$dir/e.yaml" --model "$dir/out/e-fixed-seed0.final.pt" --set 'model.trunk.hidden=[16, 8]'
cp "$dir/out/e-fixed-seed0.final.pt" "$dir/damaged.pt"
printf '\x55' | dd of="$dir/damaged.pt" bs=1 seek=300 conv=notrunc 2>/dev/null
refused "a damaged model file" "damaged: CRC-32" "$dir/e.yaml" --model "$dir/damaged.pt"
refused "a result file given as the model" "checksum trailer" "$dir/e.yaml" --model "$result"
refused "an unknown split" "unknown --split 'dev'" "$dir/e.yaml" --model "$dir/damaged.pt" --split dev

# A sweep's trial removes a killed writer's staging files of its models too.
"$fulcrum" sweep "$dir/e.yaml" --set output="$dir/swept" --set train.epochs=1 --dry-run > "$dir/plan.txt" 2>&1
id="$(grep -oE '^ +0  [0-9a-f]{12}' "$dir/plan.txt" | awk '{print $2}')"
check "the dry run names the trial's id" test -n "$id"
mkdir -p "$dir/swept"
stem="$dir/swept/e-fixed-seed0-$id"
touch "$stem.best.pt.part-4242" "$stem.final.pt.part-4242"
"$fulcrum" sweep "$dir/e.yaml" --set output="$dir/swept" --set train.epochs=1 > "$dir/sweep.txt" 2>&1
check "the one-trial sweep exits 0 (got $?)" test "$?" -eq 0
check "the models' staging leftovers are gone" test -z "$(ls "$dir/swept" | grep -F '.pt.part-')"
check "the trial saved its models" test -f "$stem.best.pt" -a -f "$stem.final.pt"
finish
