#!/usr/bin/env bash
# fulcrum-bench smoke test: one strategy, a few steps, one thread; checks that
# it writes a well-formed CSV and Markdown table. Times nothing.
#
# Usage: check_bench.sh FULCRUM_BENCH_BINARY
set -u

if [[ $# -ne 1 || ! -x $1 ]]; then
  echo "usage: $0 FULCRUM_BENCH_BINARY" >&2
  exit 2
fi
bench=$1
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fulcrum-bench-test.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# The Python reference loop is not run (importing torch alone takes seconds);
# it must at least compile.
reference=$(dirname "$0")/../tools/bench_reference.py
/usr/bin/python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' "$reference" \
  || fail "tools/bench_reference.py does not parse"
rows=2  # header + fixed

"$bench" --workloads w1 --strategies fixed --no-variants --threads 1 --warmup 1 --steps 3 --python none \
  --csv "$scratch/bench.csv" --markdown "$scratch/bench.md" >"$scratch/out" 2>"$scratch/err"
rc=$?
[[ $rc -eq 0 ]] || fail "exit $rc: $(cat "$scratch/err")"
[[ -s $scratch/bench.csv ]] || fail "no CSV written"
header=$(head -n 1 "$scratch/bench.csv")
[[ $header == workload,threads,implementation,case,needs,steps,median_ms,* ]] || fail "CSV header: $header"
lines=$(wc -l <"$scratch/bench.csv")
[[ $lines -eq $rows ]] || fail "CSV has $lines lines, expected $rows: $(cat "$scratch/bench.csv")"
columns=$(awk -F, '{print NF}' "$scratch/bench.csv" | sort -u | tr '\n' ' ')
[[ $columns == "20 " ]] || fail "CSV rows must all have 20 columns, got: $columns"
row=$(grep '^w1,1,cpp,"fixed",losses,3,' "$scratch/bench.csv") || fail "no row for fixed: $(cat "$scratch/bench.csv")"
median=$(cut -d, -f7 <<<"$row")
awk -v m="$median" 'BEGIN { exit !(m > 0) }' || fail "median step time is not positive: $median"
ratio=$(cut -d, -f15 <<<"$row")
[[ $ratio == 1.0000 ]] || fail "equal weighting's ratio to itself is $ratio"
grep -q '^| fixed | losses |' "$scratch/bench.md" || fail "Markdown lacks the fixed row: $(cat "$scratch/bench.md")"
grep -q 'AMD\|Intel\|model\|cores' "$scratch/bench.md" || fail "Markdown does not name the machine"

# Bad input: exit 2 with a message.
"$bench" --strategies no_such_strategy --python none >"$scratch/out" 2>"$scratch/err"
rc=$?
[[ $rc -eq 2 ]] || fail "unknown strategy: exit $rc, expected 2"
grep -q "unknown strategy 'no_such_strategy'" "$scratch/err" || fail "unknown strategy: $(cat "$scratch/err")"

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "fulcrum-bench smoke test passed"
