#!/bin/sh
# settings_agree.sh — nnc and the runtime give the same answer for the same setting text.
#
#   settings_agree.sh NNC PROBE CASES WORKDIR
#
# A line `model | INPUT | TARGET | LOGITS | DATA` makes the following cases use a model with
# `input x : INPUT`, `target y : TARGET`, loss cross_entropy(LOGITS, y) and, for validate cases,
# `data = DATA` (the first model: float[4], class[3], x -> dense(3), csv("train.csv")).
# For each other line `KEY | VALUE | ok|error | TEXT` of CASES:
#   nnc:     compiles a model whose train block says `KEY = VALUE` and reads the stored default
#            back from the executable's --help ("defaults of this model");
#   runtime: settings_probe KEY VALUE, what --KEY VALUE goes through on the command line.
# Both must accept or both reject, as the line expects. Accepted: both canonical values equal
# TEXT (when given). Rejected: both messages contain TEXT (when given). Prints every mismatch.
nnc=$1 probe=$2 cases=$3 work=$4
mkdir -p "$work" && cd "$work" || exit 2
fail=0 count=0
trim() { printf '%s' "$1" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//'; }
# The value --help shows for KEY (clip and early_stop are left out there when off).
help_value() {
  case "$1" in
    data|validate|optimizer|schedule)
      sed -n "s/^  $1 *//p" help.out ;;
    *)
      v=$(sed -n "s/^  epochs .*[ ,]$1 \([^,]*\),.*/\1/p; s/^  epochs \([^,]*\),.*/E\1/p" help.out)
      case "$1" in epochs) v=$(printf '%s\n' "$v" | sed -n 's/^E//p') ;; *) v=$(printf '%s\n' "$v" | grep -v '^E') ;; esac
      [ -n "$v" ] || v=0
      printf '%s\n' "$v" ;;
  esac
}
input='float[4]' target='class[3]' logits='x -> dense(3)' vdata='csv("train.csv")'
while IFS='|' read -r key value expect text more; do
  key=$(trim "$key")
  case "$key" in ''|'#'*) continue ;; esac
  value=$(trim "$value") expect=$(trim "$expect") text=$(trim "$text")
  if [ "$key" = model ]; then
    input=$value target=$expect logits=$text vdata=$(trim "$more")
    continue
  fi
  count=$((count + 1))
  extra=""
  [ "$key" = validate ] && extra="data = $vdata"
  printf 'input x : %s\ntarget y : %s\nloss cross_entropy(%s, y)\ntrain {\n  %s\n  %s = %s\n}\n' \
    "$input" "$target" "$logits" "$extra" "$key" "$value" > case.nn
  rm -f case
  if "$nnc" case.nn -O0 -o case 2> nnc.err > /dev/null; then
    ./case --help > help.out 2>&1
    c_status=ok c_value=$(help_value "$key")
  else
    c_status=error c_value=""
  fi
  if "$probe" "$key" "$value" "$input" "$target" > probe.out 2> probe.err; then
    r_status=ok r_value=$(cat probe.out)
  else
    r_status=error r_value=""
  fi
  problem=""
  if [ "$c_status" != "$expect" ] || [ "$r_status" != "$expect" ]; then
    problem="expected $expect; nnc: $c_status, runtime: $r_status"
  elif [ "$expect" = ok ] && [ "$c_value" != "$r_value" ]; then
    problem="canonical values differ"
  elif [ "$expect" = ok ] && [ -n "$text" ] && [ "$c_value" != "$text" ]; then
    problem="canonical value is not '$text'"
  elif [ "$expect" = error ] && [ -n "$text" ] &&
       { ! grep -qF -- "$text" nnc.err || ! grep -qF -- "$text" probe.err; }; then
    problem="a message lacks '$text'"
  fi
  if [ -n "$problem" ]; then
    fail=$((fail + 1))
    echo "FAIL: $key = $value: $problem"
    echo "  nnc:     $c_value"; sed 's/^/    /' nnc.err
    echo "  runtime: $r_value"; sed 's/^/    /' probe.err
  fi
done < "$cases"
echo "$count cases, $fail failed"
[ "$count" -gt 0 ] && [ "$fail" -eq 0 ]
