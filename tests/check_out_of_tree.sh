#!/usr/bin/env bash
# fulcrum as a library: installs the build into a temporary prefix, builds
# tests/out_of_tree (one source file registering a strategy, a dataset and a
# trunk, then calling fulcrum::cliMain) against it with find_package(fulcrum),
# and runs a short experiment and a two-trial sweep (child processes of the
# same program) with the registered names.
#
# Usage: check_out_of_tree.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 2
fi
build=$1
source=$2
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fulcrum-out-of-tree.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

start=$(date +%s)
cmake --install "$build" --prefix "$scratch/prefix" >"$scratch/install.log" 2>&1 ||
  { cat "$scratch/install.log"; fail "cmake --install"; }
[[ -f $scratch/prefix/lib/cmake/fulcrum/fulcrumConfig.cmake ]] || fail "no package config installed"
[[ -f $scratch/prefix/include/fulcrum/tools/cli.h ]] || fail "tools/cli.h not installed"
[[ -x $scratch/prefix/bin/fulcrum ]] || fail "the fulcrum command is not installed"
echo "installed in $(($(date +%s) - start)) s"

start=$(date +%s)
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S "$source/tests/out_of_tree" -B "$scratch/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$scratch/prefix" >"$scratch/configure.log" 2>&1 ||
  { cat "$scratch/configure.log"; fail "configuring the out-of-tree project"; }
cmake --build "$scratch/build" -j 1 >"$scratch/build.log" 2>&1 ||
  { cat "$scratch/build.log"; fail "building the out-of-tree project"; }
echo "configured and built the out-of-tree program in $(($(date +%s) - start)) s"

program=$scratch/build/my-fulcrum
"$program" list >"$scratch/list.txt" || fail "my-fulcrum list"
grep -q '^inverse_loss ' "$scratch/list.txt" || fail "list does not show the registered strategy"
grep -q '^nash_mtl ' "$scratch/list.txt" || fail "list lost the built-in strategies"

cd "$scratch"
cp "$source/tests/out_of_tree/experiment.yaml" .
"$program" run experiment.yaml --out run.h5 --quiet >run.log 2>&1 || { cat run.log; fail "my-fulcrum run"; }
"$program" show run.h5 >show.txt || fail "my-fulcrum show"
grep -q 'status *completed' show.txt || { cat show.txt; fail "the run did not complete"; }
grep -q 'strategy *inverse_loss' show.txt || fail "the result file does not name the registered strategy"

# A sweep runs each trial as a child process of the same program, which registers the same names.
"$program" sweep experiment.yaml --jobs 2 >sweep.log 2>&1 || { cat sweep.log; fail "my-fulcrum sweep"; }
[[ $(find out/out_of_tree -name '*.h5' | wc -l) -eq 2 ]] || { cat sweep.log; fail "the sweep did not write 2 trial files"; }
"$program" compare out/out_of_tree --format csv >compare.csv || { cat compare.csv; fail "my-fulcrum compare"; }
grep -q inverse_loss compare.csv || fail "compare does not list inverse_loss"

# An unknown name still lists the registered ones.
set +e
"$program" run experiment.yaml --set strategy.name=inverse_los --out bad.h5 --quiet 2>err.txt
code=$?
set -e
[[ $code -eq 2 ]] || fail "a misspelt strategy gave exit $code, expected 2"
grep -q "did you mean 'inverse_loss'" err.txt || { cat err.txt; fail "no suggestion for the registered name"; }
echo "PASS out-of-tree program: list, run, show, sweep, compare"
