#!/usr/bin/env bash
# `fulcrum compare`, `export`, `report` and tools/plot on a tiny gradnorm_toy
# sweep (fixed and dwa × seeds 0, 1; two epochs) plus a truncated copy of one
# of its files:
#  1. compare prints the table with both configurations at n = 2, states Δm%'s
#     definition and the baseline, names the truncated file and exits 1;
#     markdown, csv and json outputs parse;
#  2. export --format csv (epochs, and gradients) loads with pandas, or the
#     csv module, and every value equals the HDF5 file's (read with h5py);
#     jsonl steps parse;
#  3. report writes the HTML; headless Chromium loads it and finds the table
#     and the embedded images; the figures are valid PNGs and the series the
#     plot script recorded match means over seeds computed here from the files,
#     the gradient-conflict figure included.
# Usage: check_results_cli.sh FULCRUM EXPERIMENT.yaml PLOT_SCRIPT
set -u
fulcrum="$1"
experiment="$2"
plot="$3"
python=/usr/bin/python3
source "$(dirname "$0")/lib.sh"

out="$dir/sweep"
"$fulcrum" sweep "$experiment" --set data.train_size=200 --set data.val_size=50 --set data.test_size=50 \
  --set 'model.trunk.hidden=[16, 16]' --set train.batch_size=50 --set train.epochs=2 --set output="$out" \
  --set train.log_gradients_every=2 \
  --sweep 'strategy={name: fixed},{name: dwa}' --sweep seeds=0,1 --jobs 2 > "$dir/sweep.txt" 2>&1
code=$?
check "the tiny sweep exits 0 (got $code)" test "$code" -eq 0
good="$(ls "$out"/*.h5 | head -1)"
check "the sweep's table names the run" grep -qE '^ +[0-9]+  [0-9a-f]{12}  run|^ +#  id +run ' "$dir/sweep.txt"
"$fulcrum" show "$good" > "$dir/show.txt" 2>&1
check "show names the swept values" grep -qE '^  swept values +strategy.name=(dwa|fixed)$' "$dir/show.txt"
check "show prints the resolved configuration" grep -q '^  resolved configuration:' "$dir/show.txt"
"$python" -c 'import h5py, sys; n = h5py.File(sys.argv[1], "r").attrs["run_name"]; n = n.decode() if isinstance(n, bytes) else n; assert n in ("dwa", "fixed"), n' "$good"
check "the trial file holds a run_name" test "$?" -eq 0
head -c "$(( $(stat -c %s "$good") / 2 ))" "$good" > "$out/zz-truncated.h5"

# 1. compare
"$fulcrum" compare "$out" > "$dir/table.txt" 2>&1
code=$?
cat "$dir/table.txt"
check "compare exits 1 when a file is left out (got $code)" test "$code" -eq 1
check "compare lists fixed as baseline with n = 2" grep -qE '^fixed \(baseline\) +2 ' "$dir/table.txt"
check "compare lists dwa with n = 2" grep -qE '^dwa +2 ' "$dir/table.txt"
check "compare states the Δm% definition" grep -q 'Δm% = (1/K) Σ_k' "$dir/table.txt"
check "compare states the best-epoch rule" grep -q 'best validation value' "$dir/table.txt"
check "compare names the truncated file" grep -q 'zz-truncated.h5: unreadable' "$dir/table.txt"
"$fulcrum" compare "$out" --format markdown 2>/dev/null | grep -q '^| strategy | n |'
check "markdown has a pipe table" test "$?" -eq 0
"$fulcrum" compare "$out" --format json 2>/dev/null |
  "$python" -c 'import json, sys; d = json.load(sys.stdin); assert [r["n"] for r in d["rows"]] == [2, 2], d["rows"]'
check "json parses with two rows of n = 2" test "$?" -eq 0
"$fulcrum" compare "$out" --format csv 2>/dev/null |
  "$python" -c 'import csv, sys; rows = list(csv.DictReader(sys.stdin)); assert len(rows) == 2 and rows[0]["n"] == "2"'
check "csv parses with two rows" test "$?" -eq 0
"$fulcrum" compare "$out" --baseline nosuch > /dev/null 2> "$dir/bad.txt"
check "an unknown --baseline exits 2 naming the labels (got $?)" grep -q "names no configuration (known: dwa, fixed)" "$dir/bad.txt"
"$fulcrum" compare "$out" --select best:delta_m --delta-m tasks > "$dir/deltam.txt" 2>&1
check "--select best:delta_m lists each trial's epoch" grep -qE '^  dwa: seed 0 → [01]; seed 1 → [01]$' "$dir/deltam.txt"
check "--delta-m tasks states its definition" grep -q 'Δm% = (1/T) Σ_t (1/K_t)' "$dir/deltam.txt"
"$fulcrum" compare "$out" --select last:2 --format json 2>/dev/null |
  "$python" -c 'import json, sys; d = json.load(sys.stdin); assert d["selection"] == "last:2" and all(e["epochs"] == "0-1" for r in d["rows"] for e in r["chosen_epochs"]), d["rows"]'
check "--select last:2 averages both epochs of every trial" test "$?" -eq 0
"$fulcrum" compare "$out" --select last:0 > /dev/null 2> "$dir/bad.txt"
code=$?
check "--select last:0 exits 2 (got $code)" test "$code" -eq 2
check "--select last:0 says why" grep -q "last: takes a count of epochs >= 1" "$dir/bad.txt"

# 1b. single-task baselines in the same runner: stl trials of each task and
# fixed, three seeds; compare --baseline stl combines them into one row.
stl="$dir/stl"
"$fulcrum" sweep "$experiment" --set data.train_size=200 --set data.val_size=50 --set data.test_size=50 \
  --set 'model.trunk.hidden=[16, 16]' --set train.batch_size=50 --set train.epochs=2 --set output="$stl" \
  --set train.log_gradients_every=0 --set train.checkpoint_every=0 \
  --sweep 'strategy={name: stl, task: task0},{name: stl, task: task1},{name: fixed}' \
  --sweep seeds=0,1,2 --jobs 2 > "$dir/stl-sweep.txt" 2>&1
check "the single-task sweep exits 0 (got $?)" test "$?" -eq 0
"$fulcrum" compare "$stl" --baseline stl > "$dir/stl.txt" 2>&1
code=$?
cat "$dir/stl.txt"
check "compare --baseline stl exits 0 (got $code)" test "$code" -eq 0
check "the stl row is the baseline of 3 seeds" grep -qE '^stl \(baseline\) +3 ' "$dir/stl.txt"
check "fixed is measured against it per seed" grep -qE '^fixed +3 .* seed ' "$dir/stl.txt"
check "the combination is stated" grep -q "the single-task trials of task0, task1 combined" "$dir/stl.txt"
"$fulcrum" compare "$stl" --format json 2>/dev/null |
  "$python" -c 'import json, sys; rows = {r["strategy"]: r for r in json.load(sys.stdin)["rows"]}; t0 = rows["stl task=task0"]; assert t0["best"]["task1/mse"] is None and t0["best"]["task0/mse"] is not None, t0'
check "a single-task row leaves the untrained heads' metrics out" test "$?" -eq 0
"$fulcrum" report "$stl" --baseline stl --plot-script "$plot" > "$dir/stl-report.txt" 2>&1
code=$?
check "report --baseline stl exits 0 (got $code)" test "$code" -eq 0
check "report --baseline stl draws its figures without a traceback" \
  bash -c "test -s '$stl/figures/delta-m-percent.png' && ! grep -q Traceback '$stl/figures/plot.log'"

# 2. export
"$fulcrum" export "$out" --format csv --what epochs --out "$dir/epochs.csv" 2> "$dir/export.txt"
code=$?
cat "$dir/export.txt"
check "export exits 1 with a skipped file (got $code)" test "$code" -eq 1
check "export reports the truncated file" grep -q 'skipped .*zz-truncated.h5' "$dir/export.txt"
"$python" - "$dir/epochs.csv" "$out" <<'EOF'
import csv, math, os, sys
import h5py
path, folder = sys.argv[1], sys.argv[2]
try:
    import pandas
    rows = pandas.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
except ImportError:
    rows = list(csv.DictReader(open(path)))
assert len(rows) > 0
files = {}
checked = 0
for row in rows:
    name = row["trial"]
    if name not in files:
        files[name] = h5py.File(os.path.join(folder, name + ".h5"), "r")
    f = files[name]
    curve = "epochs/" + "/".join(p for p in (row["split"], row["task"], row["metric"]) if p)
    epoch = int(row["epoch"])
    index = list(f["epochs/epoch"][()]).index(epoch)
    expected = f[curve][index]
    value = float(row["value"]) if row["value"] != "" else math.nan
    assert value == expected or (math.isnan(value) and math.isnan(expected)), (row, expected)
    checked += 1
# Every epoch curve value of every trial appears once.
expected_rows = 0
for f in files.values():
    def visit(name, obj):
        global expected_rows
        if isinstance(obj, h5py.Dataset) and name.startswith("epochs/") and name != "epochs/epoch":
            expected_rows += len(obj)
    f.visititems(visit)
assert checked == expected_rows, (checked, expected_rows)
assert len(files) == 4, sorted(files)
print(f"export: {checked} values equal the HDF5 files'")
EOF
check "exported CSV values equal the HDF5 files'" test "$?" -eq 0
"$fulcrum" export "$out" --format csv --what gradients --out "$dir/gradients.csv" 2> /dev/null
"$python" - "$dir/gradients.csv" "$out" <<'EOF'
import csv, math, os, sys
import h5py
path, folder = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(path)))
files, checked = {}, 0
for row in rows:
    f = files.setdefault(row["trial"], h5py.File(os.path.join(folder, row["trial"] + ".h5"), "r"))
    metric = row["metric"]
    curve = {"grad_norm": f"gradients/norm/{row['task']}",
             "cosine": f"gradients/cosine/{row['task']}/{row['other_task']}"}.get(metric, "gradients/" + metric)
    index = list(f["gradients/step"][()]).index(int(row["step"]))
    expected = f[curve][index]
    value = float(row["value"]) if row["value"] != "" else math.nan
    assert value == expected or (math.isnan(value) and math.isnan(expected)), (row, expected)
    checked += 1
for f in files.values():
    assert list(f["gradients/step"][()]) == [0, 2, 4, 6], f["gradients/step"][()]
# Per logged step: 2 norms, 1 cosine, direction_norm, step_norm.
assert len(files) == 4 and checked == 4 * 4 * 5, (len(files), checked)
print(f"export: {checked} gradient values equal the HDF5 files'")
EOF
check "exported gradient diagnostics equal the HDF5 files'" test "$?" -eq 0
"$fulcrum" export "$out" --format jsonl --what steps 2>/dev/null |
  "$python" -c 'import json, sys; rows = [json.loads(l) for l in sys.stdin]; assert len(rows) > 0 and {"trial", "step", "metric", "value"} <= set(rows[0])'
check "jsonl steps parse" test "$?" -eq 0

# 3. report (runs the plot script) and headless Chromium
"$fulcrum" report "$out" --plot-script "$plot" > "$dir/report.txt" 2>&1
code=$?
cat "$dir/report.txt"
check "report exits 1 with a file left out (got $code)" test "$code" -eq 1
check "report writes report.html" test -s "$out/report.html"
if command -v chromium > /dev/null; then
  timeout 60 chromium --headless --no-sandbox --disable-gpu --dump-dom "file://$out/report.html" \
    > "$dir/dom.html" 2> "$dir/chromium.txt"
  "$python" - "$dir/dom.html" <<'EOF'
import sys
from html.parser import HTMLParser
class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.images, self.rows = set(), 0, 0
    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs: self.ids.add(attrs["id"])
        if tag == "img" and attrs.get("src", "").startswith("data:image/png;base64,"): self.images += 1
        if tag == "tr": self.rows += 1
page = Page()
page.feed(open(sys.argv[1]).read())
assert "comparison" in page.ids and "excluded" in page.ids and "environment" in page.ids, page.ids
assert page.images >= 6, page.images
print(f"chromium: table, {page.images} images")
EOF
  check "Chromium finds the table and the images" test "$?" -eq 0
else
  echo "FAIL: chromium is not installed (tools/install-deps installs it)"
  failed=$((failed + 1))
fi
"$python" - "$out" <<'EOF'
import json, os, sys
import h5py
import matplotlib.image
import numpy as np
folder = sys.argv[1]
figures = os.path.join(folder, "figures")
data = json.load(open(os.path.join(figures, "plotted-data.json")))
names = [f["file"] for f in data["figures"]]
for expected in ["test-task0-mse-by-epoch.png", "test-task1-mae-by-epoch.png", "task-weights-by-step.png",
                 "delta-m-percent.png", "gradient-cosine-by-step.png", "gradient-norms-by-step.png"]:
    assert expected in names, names
for name in names:
    with open(os.path.join(figures, name), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", name
    image = matplotlib.image.imread(os.path.join(figures, name))
    assert image.shape[0] > 200 and image.shape[1] > 200, (name, image.shape)
figure = next(f for f in data["figures"] if f["file"] == "test-task0-mse-by-epoch.png")
assert sorted(s["label"] for s in figure["series"]) == ["dwa", "fixed"]
for series in figure["series"]:
    curves = np.array([h5py.File(p, "r")["epochs/test/task0/mse"][()] for p in series["files"]])
    assert len(series["files"]) == 2
    assert np.allclose(series["mean"], curves.mean(axis=0)), (series["mean"], curves.mean(axis=0))
    assert np.allclose(series["std"], curves.std(axis=0, ddof=1))
figure = next(f for f in data["figures"] if f["file"] == "gradient-cosine-by-step.png")
assert sorted(s["label"] for s in figure["series"]) == ["dwa", "fixed"]
for series in figure["series"]:
    curves = np.array([h5py.File(p, "r")["gradients/cosine/task0/task1"][()] for p in series["files"]])
    assert np.allclose(series["x"], [0, 2, 4, 6])
    assert np.allclose(series["mean"], curves.mean(axis=0)), (series["mean"], curves.mean(axis=0))
# Markers on every line, integer x ticks, one colour per strategy in every figure.
colors = {}
for figure in data["figures"]:
    for panel in figure["panels"]:
        assert panel["xticks"] and all(t == int(t) for t in panel["xticks"]), (figure["file"], panel)
    for series in figure["series"]:
        if figure["file"] != "delta-m-percent.png":
            assert series["marker"] == "o", (figure["file"], series["label"])
        if series["label"] in ("dwa", "fixed") and figure["file"] != "delta-m-percent.png":
            colors.setdefault(series["label"], set()).add(series["color"])
assert all(len(c) == 1 for c in colors.values()) and len(colors) == 2, colors
assert colors["dwa"] != colors["fixed"], colors
print(f"plot: {len(names)} valid PNGs; the plotted means equal the files'; markers, integer ticks, colours")
EOF
check "figures are valid PNGs with the expected series" test "$?" -eq 0

# 4. integrity: --out never writes onto an input or an existing .h5; one
# (configuration, seed) in two files is counted once.
before="$(md5sum < "$good")"
"$fulcrum" export "$out" --out "$good" > /dev/null 2> "$dir/onto.txt"
code=$?
check "export --out onto a trial file exits 2 (got $code)" test "$code" -eq 2
check "export --out onto a trial file says why" grep -q "is an input of this command" "$dir/onto.txt"
"$fulcrum" report "$out" --no-plots --out "$good" > /dev/null 2> "$dir/onto.txt"
code=$?
check "report --out onto a trial file exits 2 (got $code)" test "$code" -eq 2
check "the trial file is untouched" test "$(md5sum < "$good")" = "$before"
cp "$good" "$dir/elsewhere.h5"
"$fulcrum" export "$out" --out "$dir/elsewhere.h5" > /dev/null 2> "$dir/onto.txt"
code=$?
check "export --out onto another .h5 exits 2 (got $code)" test "$code" -eq 2
check "export --out onto another .h5 says why" grep -q "is an existing .h5 file" "$dir/onto.txt"
cp -p "$good" "$out/copy-of-a-trial.h5"
"$fulcrum" compare "$out" --format json 2>/dev/null |
  "$python" -c 'import json, sys; d = json.load(sys.stdin); assert [r["n"] for r in d["rows"]] == [2, 2], d["rows"]; assert [x["path"].rsplit("/", 1)[1] for x in d["duplicates"]] == [sys.argv[1]], d["duplicates"]' \
  "$(basename "$good")"
check "compare counts a copied file once (the first path kept)" test "$?" -eq 0
"$fulcrum" export "$out" --what summary > /dev/null 2> "$dir/summary.txt"
check "export summary says which file was kept" grep -q "copy-of-a-trial.h5 kept" "$dir/summary.txt"

# 5. a one-epoch sweep of fixed and MGDA: one-point lines with markers and
# integer ticks; MGDA's applied weights are all 1, so its panel plots the
# combination coefficients of its step diagnostics.
one="$dir/one-epoch"
"$fulcrum" sweep "$experiment" --set data.train_size=100 --set data.val_size=50 --set data.test_size=50 \
  --set 'model.trunk.hidden=[8]' --set train.batch_size=50 --set train.epochs=1 --set output="$one" \
  --sweep 'strategy={name: fixed},{name: mgda}' --jobs 2 > /dev/null 2>&1
"$python" "$plot" "$one" --fulcrum "$fulcrum" > /dev/null 2>&1
"$python" - "$one/figures/plotted-data.json" <<'EOF2'
import json, sys
data = json.load(open(sys.argv[1]))
figure = next(f for f in data["figures"] if f["file"] == "test-task0-mse-by-epoch.png")
assert [len(s["x"]) for s in figure["series"]] == [1, 1] and all(s["marker"] == "o" for s in figure["series"])
assert figure["panels"][0]["xticks"] == [0.0, 1.0, 2.0], figure["panels"]
weights = next(f for f in data["figures"] if f["file"] == "task-weights-by-step.png")
curves = {s["label"]: s["curve"] for s in weights["series"]}
assert curves["fixed: task0"] == "steps/weight/task0", curves
assert curves["mgda: task0"] == "steps/diagnostics/alpha_task0", curves
print("plot: one-epoch lines have markers and integer ticks; MGDA's coefficients plotted")
EOF2
check "one-epoch figures: markers, integer ticks, MGDA's coefficients" test "$?" -eq 0

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
