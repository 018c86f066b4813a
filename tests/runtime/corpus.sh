#!/bin/sh
# corpus.sh — runs the data-file corpus (corpus.txt) through the fixture models, for CTest.
#
#   corpus.sh MANIFEST BIN_DIR DATA_DIR WORK_DIR SUFFIX [NAME]
#
# BIN_DIR holds nnrt_fixture$SUFFIX, nnrt_fixture_regression$SUFFIX and nnrt_fixture_lm$SUFFIX
# (SUFFIX "" or "_asan").
# With NAME only that case runs, else all of them. A malformed case passes when the model exits
# with status 1, stderr holds exactly one `error:` line and it is the expected one; an OK case
# when training exits 0. Any sanitizer report fails, whatever the status (the sanitizers are told
# to exit with 86, which no case expects).
set -u
manifest=$1
bin=$2
data=$3
work=$4
suffix=$5
only=${6:-}
cd "$work" || exit 2
ASAN_OPTIONS=${ASAN_OPTIONS:-exitcode=86:detect_leaks=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:exitcode=86:print_stacktrace=1}
export ASAN_OPTIONS UBSAN_OPTIONS
out=$(mktemp) && err=$(mktemp) || exit 2
trap 'rm -f "$out" "$err"' EXIT

failed=0 ran=0
# fields are separated by " | "; the expected message is everything after the third separator
while IFS= read -r line; do
  case "$line" in '' | '#'*) continue ;; esac
  name=${line%% | *}; rest=${line#* | }
  model=${rest%% | *}; rest=${rest#* | }
  spec=${rest%% | *}; expected=${rest#* | }
  [ -n "$only" ] && [ "$name" != "$only" ] && continue
  spec=$(printf '%s' "$spec" | sed "s|@DATA@|$data|g")
  expected=$(printf '%s' "$expected" | sed "s|@DATA@|$data|g")
  case "$model" in
    fix) exe=$bin/nnrt_fixture$suffix ;;
    reg) exe=$bin/nnrt_fixture_regression$suffix ;;
    lm) exe=$bin/nnrt_fixture_lm$suffix ;;
    *) echo "corpus.sh: $name: unknown model '$model'" >&2; exit 2 ;;
  esac
  ran=$((ran + 1))
  "$exe" train --epochs 1 --quiet --validate none --data "$spec" > "$out" 2> "$err"
  status=$?
  why=
  if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer' "$err"; then
    why="sanitizer report"
  elif [ "$expected" = OK ]; then
    [ $status -eq 0 ] || why="exit status $status, expected 0"
    [ -z "$why" ] && ! grep -q '^epoch 1/1  train_loss' "$out" && why="no epoch line"
  elif [ $status -ne 1 ]; then
    why="exit status $status, expected 1"
  elif [ "$(grep -c 'error:' "$err")" -ne 1 ]; then
    why="expected exactly one error line"
  elif ! grep -Fxq -- "$expected" "$err"; then
    why="not the expected message"
  fi
  if [ -n "$why" ]; then
    failed=$((failed + 1))
    {
      echo "FAIL corpus $name: $why"
      echo "  command:  $exe train --epochs 1 --quiet --validate none --data '$spec'"
      echo "  expected: $expected"
      echo "  stderr:"
      sed 's/^/    /' "$err" | head -40
    } >&2
  fi
done < "$manifest"
if [ $ran -eq 0 ]; then
  echo "corpus.sh: no case named '$only'" >&2
  exit 2
fi
[ -z "$only" ] && echo "corpus: $ran cases, $failed failed"
[ $failed -eq 0 ]
