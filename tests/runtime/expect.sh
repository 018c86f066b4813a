#!/bin/sh
# expect.sh — run a command and check its exit status and output, for CTest.
#
#   expect.sh [-s STATUS] [-e STDERR_ERE]... [-o STDOUT_ERE]... [-n STDERR_ERE_ABSENT]... -- CMD ARGS...
#
# Passes when CMD exits with STATUS (default 0), every -e pattern matches its stderr, every -o
# pattern its stdout (grep -E), and no -n pattern matches stderr. On failure it prints what it
# got, so a failing CTest log shows the actual output.
status=0
errs_file=$(mktemp) || exit 2
outs_file=$(mktemp) || exit 2
trap 'rm -f "$errs_file" "$outs_file" "$errs_file.pat"' EXIT
: > "$errs_file.pat"
while [ $# -gt 0 ]; do
  case "$1" in
    -s) status=$2; shift 2 ;;
    -e) printf 'e%s\n' "$2" >> "$errs_file.pat"; shift 2 ;;
    -o) printf 'o%s\n' "$2" >> "$errs_file.pat"; shift 2 ;;
    -n) printf 'n%s\n' "$2" >> "$errs_file.pat"; shift 2 ;;
    --) shift; break ;;
    *) echo "expect.sh: bad argument '$1'" >&2; exit 2 ;;
  esac
done
"$@" > "$outs_file" 2> "$errs_file"
got=$?
fail=0
if [ "$got" != "$status" ]; then
  echo "FAIL: exit status $got, expected $status" >&2
  fail=1
fi
while IFS= read -r line; do
  kind=$(printf '%s' "$line" | cut -c1)
  pat=$(printf '%s' "$line" | cut -c2-)
  case "$kind" in
    e) grep -Eq -- "$pat" "$errs_file" || { echo "FAIL: stderr does not match: $pat" >&2; fail=1; } ;;
    o) grep -Eq -- "$pat" "$outs_file" || { echo "FAIL: stdout does not match: $pat" >&2; fail=1; } ;;
    n) grep -Eq -- "$pat" "$errs_file" && { echo "FAIL: stderr unexpectedly matches: $pat" >&2; fail=1; } ;;
  esac
done < "$errs_file.pat"
# a sanitizer report is always a failure
if grep -Eq 'AddressSanitizer|runtime error:|LeakSanitizer' "$errs_file"; then
  echo "FAIL: sanitizer report" >&2
  fail=1
fi
if [ $fail -ne 0 ]; then
  echo "--- command: $*" >&2
  echo "--- stdout:" >&2; cat "$outs_file" >&2
  echo "--- stderr:" >&2; cat "$errs_file" >&2
  exit 1
fi
exit 0
