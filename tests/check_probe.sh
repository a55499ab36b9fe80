#!/usr/bin/env bash
# `fulcrum probe` on hand-derived cases and on bad input.
#
# Usage: check_probe.sh FULCRUM_BINARY
set -u

if [[ $# -ne 1 || ! -x $1 ]]; then
  echo "usage: $0 FULCRUM_BINARY" >&2
  exit 2
fi
fulcrum=$1
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fulcrum-probe.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# expect_output NAME EXPECTED_SUBSTRING ARGS...: exit 0 and stdout contains the text.
expect_output() {
  local name=$1 expected=$2
  shift 2
  local out
  out=$("$fulcrum" probe "$@" 2>"$scratch/err")
  local rc=$?
  [[ $rc -eq 0 ]] || fail "$name: exit $rc, expected 0 ($(cat "$scratch/err"))"
  [[ $out == *"$expected"* ]] || fail "$name: output lacks '$expected': $out"
}

# expect_error NAME EXPECTED_SUBSTRING ARGS...: exit 2 and stderr contains the text.
expect_error() {
  local name=$1 expected=$2
  shift 2
  "$fulcrum" probe "$@" >"$scratch/out" 2>"$scratch/err"
  local rc=$?
  [[ $rc -eq 2 ]] || fail "$name: exit $rc, expected 2"
  grep -qF -- "$expected" "$scratch/err" || fail "$name: stderr lacks '$expected': $(cat "$scratch/err")"
}

printf '1,0\n0,1\n' >"$scratch/orthogonal.csv"
# MGDA on two orthogonal unit gradients: γ = (1 − 0)/(1 + 1 − 0) = 1/2, d = (0.5, 0.5).
expect_output mgda_orthogonal '"direction":[0.5,0.5],"weights":[1,1],"diagnostics":{"iterations":0,"alpha_task0":0.5,"alpha_task1":0.5}' \
  mgda --grads "$scratch/orthogonal.csv"

# Two steps: step 1 is the conflicting pair (1,0), (−1,1): PCGrad gives
# (0.5,0.5) + (0,1) = (0.5, 1.5).
printf '1,0\n0,1\n\n1,0\n-1,1\n' >"$scratch/two.csv"
out=$("$fulcrum" probe pcgrad --grads "$scratch/two.csv" --steps 2 --seed 3)
[[ $(grep -c '"step"' <<<"$out") -eq 2 ]] || fail "pcgrad_steps: expected 2 lines: $out"
[[ $(sed -n 2p <<<"$out") == *'"direction":[0.5,1.5]'* ]] || fail "pcgrad_steps: step 1: $out"

# An option: CAGrad with c = 0 is the mean gradient, (1,0) and (−1,2) → (0, 1).
printf '1,0\n-1,2\n' >"$scratch/pair.csv"
expect_output cagrad_c0 '"direction":[0,1]' cagrad --grads "$scratch/pair.csv" --set c=0

# Nash-MTL on orthogonal (3,0), (0,4): α = 1/‖g_i‖ = (1/3, 1/4) (float32
# weights), d = (1, 1) clipped to norm 1 (max_norm 1.0).
printf '3,0\n0,4\n' >"$scratch/orth34.csv"
expect_output nash_mtl_orthogonal '"direction":[0.70710628' nash_mtl --grads "$scratch/orth34.csv"
expect_output nash_mtl_weights '"weights":[0.3333333432674408,0.25],"diagnostics":{"updated":1,"solved":1,"iterations":1' \
  nash_mtl --grads "$scratch/orth34.csv"
# Opposed gradients: no solution, α stays 1, d = 0.
printf '1,0\n-1,0\n' >"$scratch/opposed.csv"
expect_output nash_mtl_opposed '"direction":[0,0],"weights":[1,1],"diagnostics":{"updated":1,"solved":0' \
  nash_mtl --grads "$scratch/opposed.csv"
# FairGrad with α = 2 on (8,0), (0,1): w_i = ‖g_i‖^{−4/3} = (1/16, 1).
printf '8,0\n0,1\n' >"$scratch/orth81.csv"
expect_output fairgrad_alpha2 '"w_task0":0.0625' fairgrad --grads "$scratch/orth81.csv" --set alpha=2

# A loss-weighting strategy: direction = Σ (∂objective/∂L_i) g_i; fixed
# weights (1, 3): 1·(1,0) + 3·(−1,2) = (−2, 6).
printf '2,4\n' >"$scratch/losses.csv"
expect_output fixed_objective '"kind":"objective","direction":[-2,6],"weights":[1,3]' \
  fixed --grads "$scratch/pair.csv" --losses "$scratch/losses.csv" --set 'weights=[1, 3]'

# GradVac with the initial targets 0 leaves orthogonal gradients alone: the sum.
expect_output gradvac_orthogonal '"direction":[1,1],"weights":[1,1],"diagnostics":{"corrections":0,' \
  gradvac --grads "$scratch/orthogonal.csv"

# GradDrop keeps every component where the tasks agree in sign, and with
# leak = 1 everything: (1,0) + (−1,2) = (0, 2).
printf '1,2\n3,4\n' >"$scratch/agree.csv"
expect_output graddrop_agree '"kind":"representation_gradient","direction":[4,6]' \
  graddrop --grads "$scratch/agree.csv"
expect_output graddrop_leak '"direction":[0,2]' graddrop --grads "$scratch/pair.csv" --set leak=1

# Aligned-MTL on orthogonal gradients of norms 1 and 2: M = diag(1, 4), σ = 1,
# α_i = σ/‖g_i‖ = (1, 0.5), d = (1,0) + 0.5·(0,2) = (1, 1).
printf '1,0\n0,2\n' >"$scratch/norms.csv"
expect_output aligned_mtl_orthogonal '"direction":[1,1],"weights":[1,1],"diagnostics":{"rank":2,"sigma":1,"alpha_task0":1,"alpha_task1":0.5}' \
  aligned_mtl --grads "$scratch/norms.csv"

# UPGrad on non-conflicting gradients (1,0), (1,1): both already lie in the
# dual cone, λ̄ = (1/2, 1/2), d = their mean (1, 0.5).
printf '1,0\n1,1\n' >"$scratch/agree.csv"
expect_output upgrad_no_conflict '"direction":[1,0.5],"weights":[1,1],"diagnostics":{"iterations":0,"lambda_task0":0.5,"lambda_task1":0.5}' \
  upgrad --grads "$scratch/agree.csv"

# FAMO measures the losses after its step (loss_after: second_pass): probe
# hands it the next line of --losses, as the trainer hands it the second
# pass. Task 0's log-loss falls by 1, task 1's by 0: z = (1/2, 1/2), δ = (1, 0),
# Adam's first step moves the logits by ∓lr = ∓0.025, so
# z0 = 1/(1 + e^0.05) = 0.48750260… at step 1.
printf '1,1\n0.36787944117144233,1\n' >"$scratch/falling.csv"
out=$("$fulcrum" probe famo --grads "$scratch/two.csv" --steps 2 --losses "$scratch/falling.csv" 2>&1)
[[ $? -eq 0 ]] || fail "famo_two_steps: $out"
[[ $(sed -n 2p <<<"$out") == *'"z_task0":0.487502604'* ]] || fail "famo_two_steps: step 1: $out"

# Bad input (each run loads LibTorch, ~0.7 s, so a few representative cases).
printf '1,0\n0,1,2\n' >"$scratch/ragged.csv"
expect_error ragged 'ragged' mgda --grads "$scratch/ragged.csv"
printf '1,0\nx,1\n' >"$scratch/word.csv"
expect_error non_numeric "word.csv:2: row 2, column 1: 'x' is not a number" mgda --grads "$scratch/word.csv"
printf '1,2,3\n' >"$scratch/three.csv"
expect_error losses '3 losses, expected 2' mgda --grads "$scratch/orthogonal.csv" --losses "$scratch/three.csv"
expect_error unknown_strategy "unknown strategy 'mgdb'" mgdb --grads "$scratch/orthogonal.csv"
expect_error unknown_option 'strategy.normalisation' mgda --grads "$scratch/orthogonal.csv" --set normalisation=l2

# The strategy switches of the first hour: `list NAME`, `--strategy NAME`,
# and a --set of strategy.name blamed on the --set.
out=$("$fulcrum" list gradnorm 2>&1)
[[ $? -eq 0 && $out == *"alpha"*"number"*"1.5"*">= 0"* ]] || fail "list gradnorm: $out"
out=$("$fulcrum" list gradnrom 2>&1)
[[ $? -eq 2 && $out == *"unknown strategy 'gradnrom'"* ]] || fail "list gradnrom: $out"
cat >"$scratch/switch.yaml" <<YAML
data: {kind: gradnorm_toy, train_size: 64, val_size: 32, test_size: 32}
model: {trunk: {kind: mlp, hidden: [8]}}
train: {epochs: 1, batch_size: 32, checkpoint_every: 0}
strategy: {name: gradnorm, alpha: 1.5}
YAML
out=$("$fulcrum" run "$scratch/switch.yaml" --quiet --strategy dwa --set strategy.temperature=3 \
        --out "$scratch/switch/dwa.h5" 2>&1)
[[ $? -eq 0 ]] || fail "--strategy dwa (the file's alpha left behind): $out"
out=$("$fulcrum" show "$scratch/switch/dwa.h5" 2>&1)
[[ $out == *"temperature: 3"* && $out != *"alpha"* ]] || fail "--strategy dwa: resolved strategy: $out"
out=$("$fulcrum" run "$scratch/switch.yaml" --quiet --set strategy.name=gradnrom --out "$scratch/switch/x.h5" 2>&1)
[[ $? -eq 2 && $out == "fulcrum: --set strategy.name=gradnrom: strategy.name: unknown strategy 'gradnrom'"* ]] ||
  fail "--set strategy.name=gradnrom: $out"
[[ ! -e $scratch/switch/x.h5 ]] || fail "--set strategy.name=gradnrom wrote a file"

if [[ $failures -ne 0 ]]; then
  echo "$failures probe check(s) failed" >&2
  exit 1
fi
echo "probe checks passed"
