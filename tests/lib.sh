# Shared by the shell tests; source it after the script's `set -u` and after
# setting `fulcrum` (the executable under test). Provides:
#   $dir            a scratch folder, removed at exit
#   check DESCRIPTION COMMAND...   runs COMMAND; counts a pass, or prints FAIL
#   contains FILE TEXT             FILE holds TEXT (fixed string)
#   status FILE                    the status attribute of a result file ("" if unreadable)
#   finish                         prints the tally; returns non-zero if anything failed
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
passed=0
failed=0
check() {  # check DESCRIPTION COMMAND...
  local what="$1"; shift
  if "$@"; then passed=$((passed + 1)); else echo "FAIL: $what"; failed=$((failed + 1)); fi
}
contains() { grep -qF -- "$2" "$1"; }
status() { "$fulcrum" show "$1" 2>/dev/null | awk '$1 == "status" {print $2}'; }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
