#!/usr/bin/env bash
# Successive halving and ASHA (`sweep.halving`) on the local runner, on a tiny
# regression toy (4 Sobol' points of the learning rate, 4 epochs, rungs at
# epochs 1, 2, 4, eta 2; about 1 s per trial):
#  1. synchronous: exit 0; the record's promotions are the best half of each
#     rung by the mean validation loss at the rung's epoch, recomputed here
#     from the files; 8 of the full grid's 16 epochs trained;
#  2. a rerun trains nothing and decides nothing again; `status` shows paused;
#  3. a removed file of the last rung is retrained, the decisions kept;
#  4. --no-halving trains the full grid; every file equals a straight full
#     grid's bit for bit (paused and resumed = uninterrupted), and the
#     summary gives the pick's rank in it, recomputed here;
#  5. ASHA with one worker promotes exactly as Li et al.'s Algorithm 2,
#     simulated here from the full grid's values;
#  6. ASHA with --launcher slurm is refused at its key (exit 2).
# Usage: check_halving.sh FULCRUM
set -u
fulcrum="$(realpath "$1")"
source "$(dirname "$0")/lib.sh"
cd "$dir" || exit 1
python=/usr/bin/python3

cat > h.yaml <<'YAML'
name: h
seed: 0
output: out
data: {kind: gradnorm_toy, sigmas: [1, 100], train_size: 400, val_size: 100, test_size: 100}
model:
  trunk: {kind: mlp, hidden: [16, 16]}
  head: {kind: linear}
train: {epochs: 4, batch_size: 50, optimizer: {kind: adam, lr: 0.001}}
strategy: {name: fixed}
sweep:
  search:
    method: sobol
    trials: 4
    space:
      train.optimizer.lr: {log_uniform: [1e-4, 1e-1]}
  halving: {metric: loss, min_epochs: 1, eta: 2}
YAML
sed -e 's/output: out/output: asha/' -e 's/eta: 2}/eta: 2, asynchronous: true}/' h.yaml > asha.yaml

# The record's promotions against the files: python3 verify.py RECORD FOLDER MODE
cat > verify.py <<'PY'
import glob, sys, h5py, numpy as np, yaml
record, folder, mode = sys.argv[1], sys.argv[2], sys.argv[3]
rec = yaml.safe_load(open(record))
rungs, eta = rec["rungs"], rec["eta"]
ids = [c[0] for c in rec["configurations"]]
def value(id_, epoch):  # the mean validation loss over the tasks after `epoch`
    [path] = glob.glob(f"{folder}/*-{id_}.h5")
    with h5py.File(path, "r") as f:
        return float(np.mean([f[f"epochs/val/{t}/loss"][epoch - 1] for t in ("task0", "task1")]))
got = [(p["rung"], p["configuration"]) for p in rec["promotions"]]
for p in rec["promotions"]:  # the recorded value is the files' value, to the bit
    assert p["value"] == value(ids[p["configuration"]], rungs[p["rung"]]), p
if mode == "sync":
    members, expected = list(range(len(ids))), []
    for k in range(len(rungs) - 1):
        order = sorted(members, key=lambda g: (value(ids[g], rungs[k]), g))
        members = order[:max(1, len(members) // eta)]
        expected += [(k, g) for g in members]
    assert got == expected, (got, expected)
else:  # ASHA with one worker: Algorithm 2 of Li et al. (2020)
    at = [None] * len(ids)  # the rung each configuration is at (None: not started)
    done = {k: [] for k in range(len(rungs))}
    expected = []
    def promotion():
        for k in reversed(range(len(rungs) - 1)):
            top = sorted(done[k], key=lambda g: (value(ids[g], rungs[k]), g))[:len(done[k]) // eta]
            for g in top:
                if at[g] == k:
                    return k, g
    while True:
        job = promotion()
        if job:
            k, g = job
            expected.append((k, g))
            at[g] = k + 1
            done[k + 1].append(g)
            continue
        if None not in at:
            break
        g = at.index(None)
        at[g] = 0
        done[0].append(g)
    assert got == expected, (got, expected)
print("ok")
PY

# 1. Synchronous.
"$fulcrum" sweep h.yaml --jobs 2 > sync.txt 2>&1
code=$?
check "the synchronous halving exits 0 (got $code)" test "$code" -eq 0
record="$(ls out/h-halving-*.yaml 2>/dev/null | head -n 1)"
check "the promotions are recorded in <output>/<name>-halving-<hash>.yaml" test -f "$record"
check "the promotions are the best half of each rung by the files' values" \
  "$python" verify.py "$record" out sync
check "8 of the full grid's 16 epochs are trained" \
  contains sync.txt "epochs trained by the halving: 8 of the full grid's 16 (50%)"
check "1 trial completes, 3 stay paused" contains sync.txt "1 of 4 trials completed, 3 paused at a rung"
check "the eliminated trials say where they stopped" contains sync.txt "paused after epoch 1 of 4"
cp "$record" record-1.yaml

# 2. A rerun trains nothing and decides nothing again.
"$fulcrum" sweep h.yaml --jobs 2 > rerun.txt 2>&1
code=$?
check "a rerun exits 0 (got $code)" test "$code" -eq 0
check "a rerun trains nothing" bash -c "! grep -qE '(paused|completed) in ' rerun.txt"
check "a rerun keeps the record" cmp -s "$record" record-1.yaml
"$fulcrum" status h.yaml > status.txt 2>&1
check "status shows the paused trials" grep -q "paused after epoch 2 of 4 (successive halving" status.txt

# 3. The last rung's files removed: retrained from scratch, the decisions kept.
last="$("$python" -c "
import yaml; r = yaml.safe_load(open('$record'))
print(' '.join(r['configurations'][p['configuration']][0] for p in r['promotions'] if p['rung'] == 1))")"
for id in $last; do rm -f out/*-"$id".h5; done  # the one trained to the end
"$fulcrum" sweep h.yaml --jobs 2 > again.txt 2>&1
code=$?
check "the sweep with removed files exits 0 (got $code)" test "$code" -eq 0
check "exactly the removed trial is trained again" \
  test "$(grep -cE 'completed in ' again.txt)" -eq 1
check "their promotions are not decided again" \
  "$python" -c "import yaml; a, b = (yaml.safe_load(open(f))['promotions'] for f in ('$record', 'record-1.yaml')); assert a == b"

# 4. The full grid: paused trials continue, equal to a straight full grid.
"$fulcrum" sweep h.yaml --jobs 2 --no-halving > full.txt 2>&1
code=$?
check "--no-halving exits 0 (got $code)" test "$code" -eq 0
check "--no-halving completes the 4 trials" contains full.txt "4 of 4 trials completed"
"$fulcrum" sweep h.yaml --jobs 2 --no-halving --set output=straight > straight.txt 2>&1
check "a straight full grid exits 0" test $? -eq 0
check "paused and resumed trials equal uninterrupted ones bit for bit" "$python" -c "
import glob, os, h5py, numpy as np
paths = sorted(glob.glob('out/*.h5'))
assert len(paths) == 4, paths
for a in paths:
    b = 'straight/' + os.path.basename(a)
    with h5py.File(a, 'r') as x, h5py.File(b, 'r') as y:
        names = []
        x.visit(lambda n: names.append(n) if isinstance(x[n], h5py.Dataset) else None)
        for n in names:
            if 'seconds' in n or 'timings' in n or n.startswith('steps/time'): continue
            u, v = x[n][()], y[n][()]
            assert u.shape == v.shape and u.tobytes() == v.tobytes(), (a, n)
"
rank="$("$python" -c "
import glob, yaml, h5py, numpy as np
r = yaml.safe_load(open('$record'))
ids = [c[0] for c in r['configurations']]
def v(i):
    [p] = glob.glob(f'straight/*-{i}.h5')
    with h5py.File(p, 'r') as f:
        return float(np.mean([f[f'epochs/val/{t}/loss'][-1] for t in ('task0', 'task1')]))
final = [p['configuration'] for p in r['promotions'] if p['rung'] == 1]
pick = min(final, key=lambda g: (v(ids[g]), g))
order = sorted(range(len(ids)), key=lambda g: (v(ids[g]), g))
print(order.index(pick) + 1)")"
check "the summary gives the pick's rank in the full grid ($rank)" \
  grep -q "the pick ranks $rank of 4 by val loss" full.txt

# 5. ASHA, one worker.
"$fulcrum" sweep asha.yaml --jobs 1 > asha.txt 2>&1
code=$?
check "ASHA exits 0 (got $code)" test "$code" -eq 0
check "ASHA's promotions follow Algorithm 2" \
  "$python" verify.py "$(ls asha/h-halving-*.yaml | head -n 1)" asha asha

# 6. ASHA on Slurm: refused at the key.
"$fulcrum" sweep asha.yaml --launcher slurm --dry-run > slurm.txt 2>&1
code=$?
check "ASHA with --launcher slurm exits 2 (got $code)" test "$code" -eq 2
check "the refusal names the file, line and key" \
  grep -qE "asha.yaml:1[0-9]:[0-9]+: sweep.halving.asynchronous: asynchronous halving \(ASHA\) runs on the local launcher only" slurm.txt

if [ "$failed" -ne 0 ]; then
  for f in sync.txt rerun.txt again.txt full.txt asha.txt slurm.txt; do echo "--- $f"; tail -n 25 "$f"; done
fi
finish
