#!/usr/bin/env bash
# Runs `fulcrum run` on every deliberately broken experiment file in a folder
# and checks that each is rejected the way a user should see it: exit code 2,
# the expected message, the file's path and (unless the error concerns the
# whole file) a :LINE:COL: location, no crash output, and no result file.
#
# Each file starts with
#   # expect: <text the error message must contain>
# optionally followed by
#   # set: key.path=value        (passed as --set)
#   # command: sweep             (`fulcrum sweep FILE` instead of `fulcrum run FILE`)
#   # output: own                (keep the file's own `output:`; else the output
#                                 goes to a scratch folder that must stay empty)
#
# Usage: check_broken_configs.sh FULCRUM_BINARY CORPUS_DIR
set -u

if [[ $# -ne 2 ]]; then
  echo "usage: $0 FULCRUM_BINARY CORPUS_DIR" >&2
  exit 2
fi
fulcrum=$1
corpus=$2
if [[ ! -x $fulcrum ]]; then
  echo "$0: $fulcrum is not an executable" >&2
  exit 2
fi

# Errors about the file as a whole have no line to point at.
whole_file_cases=(14-empty-file.yaml)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/fulcrum-broken-configs.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

passed=0
failed=0
shopt -s nullglob
files=("$corpus"/*.yaml)
if [[ ${#files[@]} -eq 0 ]]; then
  echo "$0: no .yaml files in $corpus" >&2
  exit 2
fi

for file in "${files[@]}"; do
  name=$(basename "$file")
  expect=$(sed -n '1s/^# expect: //p' "$file")
  override=$(sed -n '2,4s/^# set: //p' "$file")
  command=$(sed -n '2,4s/^# command: //p' "$file")
  own_output=$(sed -n '2,4s/^# output: own$/yes/p' "$file")
  problems=()
  if [[ -z $expect ]]; then
    problems+=("first line is not '# expect: ...'")
  fi

  out_dir="$scratch/$name.out"
  mkdir -p "$out_dir"
  if [[ $command == sweep ]]; then
    args=(sweep "$file")
    if [[ -z $own_output ]]; then args+=(--set "output=$out_dir"); fi
  else
    args=(run "$file" --quiet)
    if [[ -z $own_output ]]; then args+=(--out "$out_dir/x.h5"); fi
  fi
  if [[ -n $override ]]; then args+=(--set "$override"); fi
  "$fulcrum" "${args[@]}" >"$scratch/stdout" 2>"$scratch/stderr" </dev/null
  code=$?
  stderr=$(<"$scratch/stderr")
  output="$(<"$scratch/stdout")$stderr"

  if [[ $code -ne 2 ]]; then problems+=("exit code $code, expected 2"); fi
  if [[ -n $expect && $stderr != *"$expect"* ]]; then
    problems+=("stderr lacks the expected text: $expect")
  fi
  if [[ $stderr != *"$file"* ]]; then problems+=("stderr does not name the file $file"); fi
  whole_file=false
  for whole in "${whole_file_cases[@]}"; do
    if [[ $name == "$whole" ]]; then whole_file=true; fi
  done
  # The location must follow the path: "FILE:LINE:COL: ".
  after_path=${stderr#*"$file:"}
  if ! $whole_file && { [[ $after_path == "$stderr" ]] || ! [[ $after_path =~ ^[0-9]+:[0-9]+:\  ]]; }; then
    problems+=("stderr lacks a $file:LINE:COL: location")
  fi
  if grep -qiE 'terminate called|stack trace|backtrace|exception raised from|core dumped|what\(\)' \
       <<<"$output"; then
    problems+=("output shows a crash or stack trace")
  fi
  if [[ -n $(find "$out_dir" -mindepth 1 -print -quit) ]]; then
    problems+=("files were created in the output folder: $(ls -A "$out_dir" | tr '\n' ' ')")
  fi

  if [[ ${#problems[@]} -eq 0 ]]; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    for problem in "${problems[@]}"; do echo "    $problem"; done
    echo "    stderr: $stderr"
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
