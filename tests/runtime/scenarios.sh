#!/bin/sh
# scenarios.sh — multi-step runtime tests (train, save, load, resume, predict) for CTest.
#
#   scenarios.sh NAME FIXTURE_DIR DATA_DIR WORK_DIR
#
# FIXTURE_DIR holds the fixture model executables (nnrt_fixture: logistic regression, sgd with
# momentum; nnrt_fixture_regression: linear regression, adam, cosine schedule, standardize,
# split). Each scenario works in its own directory under WORK_DIR, so tests can run in parallel.
# python3 (standard library only) is used for binary edits and JSON checks.
set -u
name=$1
FIX=$2/nnrt_fixture
REG=$2/nnrt_fixture_regression
DATA=$3
W=$4/$name
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 2

fail() { echo "FAIL ($name): $*" >&2; exit 1; }
# run CMD...: must exit 0
run() { "$@" || fail "exit status $? from: $*"; }
# fails CMD...: must exit 1 with stderr matching $ERE (set before the call)
fails() {
  "$@" > out.txt 2> err.txt
  st=$?
  [ $st -eq 1 ] || { cat err.txt >&2; fail "expected exit 1, got $st from: $*"; }
  grep -Eq -- "$ERE" err.txt || { cat err.txt >&2; fail "stderr does not match '$ERE' for: $*"; }
  ! grep -Eq 'AddressSanitizer|runtime error:' err.txt || { cat err.txt >&2; fail "sanitizer report"; }
}
same() { cmp -s "$1" "$2" || fail "$1 and $2 differ"; }
# epoch lines without the timing fields, which legitimately differ between runs
untimed() { sed -E 's/  [0-9.]+s  [0-9]+ samples\/s$//' "$1"; }
field() { sed -E "s/.* $1 ([-0-9.e+]+).*/\1/"; }

# patch FILE OLD NEW [COUNT]: replace the first occurrence of bytes OLD by NEW (python3)
patch() {
  python3 - "$@" <<'PY' || fail "patch $*"
import sys
path, old, new = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
data = open(path, 'rb').read()
assert old in data, (old, path)
open(path, 'wb').write(data.replace(old, new, 1))
PY
}

case "$name" in
learns)
  # 6 epochs on the blobs: the loss falls and validation accuracy is high
  run "$FIX" train --data "$DATA/train.csv" --validate "$DATA/valid.csv" --epochs 6 --quiet > log.txt
  [ "$(wc -l < log.txt)" -eq 6 ] || fail "expected 6 epoch lines"
  first=$(head -1 log.txt | field train_loss)
  last=$(tail -1 log.txt | field train_loss)
  acc=$(tail -1 log.txt | field val_accuracy)
  awk -v a="$first" -v b="$last" -v acc="$acc" 'BEGIN { exit !(b < 0.7 * a && acc >= 0.8) }' ||
    fail "loss $first -> $last, val_accuracy $acc"
  # IDX data trains too (plain and gzip), with the banner when not --quiet
  run "$FIX" train --data "idx(\"$W/../idx/img.idx.gz\", \"$W/../idx/lbl.idx\", scale=1/255)" \
      --validate none --epochs 2 > idx.txt
  grep -q '^model fixture: 15 parameters in 2 tensors (+1 buffer values)' idx.txt || fail "banner"
  grep -q '^data: 12 training examples$' idx.txt || fail "banner data line"
  grep -q '^epoch 2/2  train_loss' idx.txt || fail "idx training"
  ;;
deterministic)
  # defaults come from the model (data found beside its source), cwd is elsewhere
  run "$FIX" train --epochs 2 --quiet --save a.st > /dev/null
  run "$FIX" train --epochs 2 --quiet --save b.st > /dev/null
  same a.st b.st
  run "$FIX" train --epochs 2 --quiet --seed 43 --save c.st > /dev/null
  ! cmp -s a.st c.st || fail "another seed gave the same weights"
  run "$FIX" train --epochs 2 --quiet --no-shuffle --save d.st > /dev/null
  run "$FIX" train --epochs 2 --quiet --no-shuffle --save e.st > /dev/null
  same d.st e.st
  ! cmp -s a.st d.st || fail "--no-shuffle gave the shuffled weights"
  run "$REG" train --quiet --save r1.st > /dev/null
  run "$REG" train --quiet --save r2.st > /dev/null
  same r1.st r2.st
  ls | grep -q tmp && fail "temporary files left behind"
  # the checkpoint names the model's tensors and metadata
  grep -aq '"linear.weight":{"dtype":"F32","shape":\[3,4\]' a.st || fail "header"
  grep -aq '"format":"nnc-1"' a.st || fail "metadata"
  grep -aq '"optimizer.momentum.linear.bias"' a.st || fail "optimizer state"
  ;;
roundtrip)
  # save -> load -> save gives the same bytes (train with nothing left to do rewrites the state)
  run "$FIX" train --epochs 2 --quiet --save a.st > /dev/null
  run "$FIX" train --load a.st --epochs 2 --save b.st > out.txt 2> err.txt
  grep -q 'nothing to train' err.txt || fail "no note"
  same a.st b.st
  run "$REG" train --quiet --save ra.st > /dev/null
  run "$REG" train --load ra.st --save rb.st 2> /dev/null
  same ra.st rb.st
  ;;
resume)
  # 2 epochs + resume to 4 == 4 epochs, bytes and epoch lines, for both fixtures
  for m in "$FIX" "$REG"; do
    run "$m" train --epochs 4 --quiet --save full.st > full.txt
    run "$m" train --epochs 2 --quiet --save part.st > part1.txt
    run "$m" train --load part.st --epochs 4 --save part.st > part2.txt
    same full.st part.st
    grep -q "^resuming from 'part.st' after epoch 2" part2.txt || fail "no resume line"
    untimed full.txt | tail -2 > a.txt
    grep '^epoch' part2.txt > b0.txt && untimed b0.txt > b.txt
    same a.txt b.txt
  done
  # weights from elsewhere (no optimizer state) start at epoch 1
  python3 - full.st w.st <<'PY' || fail "strip"
import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
data = raw[8 + n:]
out, blobs, off = {}, b'', 0
for k, v in h.items():
    if k == '__metadata__' or k.startswith('optimizer.') or k.startswith('__'):
        continue
    b, e = v['data_offsets']
    out[k] = {'dtype': 'F32', 'shape': v['shape'], 'data_offsets': [off, off + e - b]}
    blobs += data[b:e]
    off += e - b
hdr = json.dumps(out).encode()
hdr += b' ' * (-len(hdr) % 8)
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(hdr)) + hdr + blobs)
PY
  run "$REG" train --load w.st --epochs 1 > w.txt 2> w.err
  grep -q 'weights only' w.err || fail "no weights-only note"
  grep -q '^epoch 1/1' w.txt || fail "did not start at epoch 1"
  ;;
corrupt)
  run "$FIX" train --epochs 1 --quiet --save good.st > /dev/null
  size=$(wc -c < good.st)
  head -c $((size - 10)) good.st > t1.st
  ERE="checkpoint 't1.st': the tensors need [0-9]+ bytes of data but the file has only [0-9]+ \(truncated\)"
  fails "$FIX" eval --load t1.st
  head -c 40 good.st > t2.st
  ERE="checkpoint 't2.st': header length [0-9]+ does not fit in the file of 40 bytes"
  fails "$FIX" eval --load t2.st
  head -c 5 good.st > t3.st
  ERE="checkpoint 't3.st': the file is 5 bytes long"
  fails "$FIX" eval --load t3.st
  cp good.st t4.st && printf 'junk' >> t4.st
  ERE="checkpoint 't4.st': 4 unexpected bytes after the last tensor"
  fails "$FIX" eval --load t4.st
  cp good.st t5.st && patch t5.st '"F32"' '"F16"'
  ERE="checkpoint 't5.st': tensor '[a-z.]+' has dtype F16; nnc checkpoints hold F32 tensors only"
  fails "$FIX" eval --load t5.st
  cp good.st t6.st && patch t6.st '"shape":[3,4]' '"shape":[4,3]'
  ERE="checkpoint 't6.st': tensor 'linear.weight' has shape \[4,3\], the model expects \[3,4\]"
  fails "$FIX" eval --load t6.st
  cp good.st t7.st && patch t7.st '"data_offsets":[0,' '"data_offsetz":[0,'
  ERE="checkpoint 't7.st': tensor '[a-z.]+' needs \"dtype\", \"shape\" and \"data_offsets\""
  fails "$FIX" eval --load t7.st
  cp good.st t8.st && patch t8.st '"dtype":"F32",' '"dtype":"F32"}'
  ERE="checkpoint 't8.st': corrupt header: byte [0-9]+ of the JSON header"
  fails "$FIX" eval --load t8.st
  echo "not a checkpoint at all" > t9.st
  ERE="checkpoint 't9.st': header length [0-9]+ does not fit"
  fails "$FIX" eval --load t9.st
  ERE="cannot open checkpoint 'missing.st': No such file"
  fails "$FIX" eval --load missing.st
  # another model's checkpoint: every missing and unexpected tensor is named
  run "$REG" train --epochs 1 --quiet --save reg.st > /dev/null
  ERE="checkpoint 'reg.st': 3 tensors of model 'fixture' are missing: 'linear.weight', 'linear.bias', 'stats.seen'"
  fails "$FIX" train --load reg.st
  grep -q "unexpected tensors not in model 'fixture': 'lin.weight', 'lin.bias'" err.txt || fail "unexpected list"
  # a failed load never touches the --save file
  cp good.st keep.st
  ERE="tensor 'linear.weight' has shape"
  fails "$FIX" train --load t6.st --save keep.st
  same good.st keep.st
  ;;
diverge)
  # a huge learning rate: clear error, exit 1, last good checkpoint untouched
  run "$REG" train --epochs 1 --quiet --save ok.st > /dev/null
  cp ok.st copy.st
  ERE="error: loss became (NaN|infinite) at epoch 2, step [0-9]+ \(batch of [0-9]+ examples\)"
  fails "$REG" train --load ok.st --epochs 3 --lr 1e30 --save ok.st --quiet
  grep -q "hint: lower the learning rate" err.txt || fail "no hint"
  grep -q "the checkpoint 'ok.st' from epoch 1 is untouched" err.txt || fail "no note"
  same ok.st copy.st
  ls | grep -q tmp && fail "temporary files left behind"
  # an unwritable destination: error, exit 1, nothing left behind
  ERE="cannot create checkpoint '$W/no/such/dir/x.st'"
  fails "$FIX" train --epochs 1 --quiet --save "$W/no/such/dir/x.st"
  ;;
log)
  run "$FIX" train --epochs 2 --quiet --validate none --log run.jsonl > /dev/null
  run "$FIX" train --epochs 1 --quiet --log run.jsonl > /dev/null
  python3 - run.jsonl <<'PY' || fail "log contents"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 3, rows
keys = {"epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "seconds",
        "samples_per_sec", "lr"}
for r in rows:
    assert keys <= set(r), r
assert [r["epoch"] for r in rows] == [1, 2, 1]
assert rows[0]["val_loss"] is None and rows[0]["val_accuracy"] is None
assert isinstance(rows[2]["val_loss"], float) and 0 <= rows[2]["val_accuracy"] <= 1
assert rows[0]["lr"] == 0.5 and rows[1]["train_loss"] < rows[0]["train_loss"]
PY
  # the log's train_loss round-trips the printed one
  run "$REG" train --epochs 2 --quiet --log reg.jsonl > reg.txt
  python3 - reg.jsonl reg.txt <<'PY' || fail "regression log"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
lines = open(sys.argv[2]).read().split('\n')
assert {"train_mae", "val_rmse"} <= set(rows[0])
for r, l in zip(rows, lines):
    assert ("train_loss %.4f" % r["train_loss"]) in l, (r, l)
assert rows[0]["lr"] == 0.05 and rows[1]["lr"] == 0.05  # cosine(warmup=1) over 2 epochs
PY
  ;;
predict)
  run "$FIX" train --epochs 3 --quiet --save p.st > /dev/null
  run "$FIX" predict --load p.st "$DATA/predict.csv" > p1.csv
  run "$FIX" predict --load p.st "$DATA/predict_with_label.csv" > p2.csv
  run "$FIX" predict --load p.st 'csv("predict.csv")' > p3.csv
  same p1.csv p2.csv
  same p1.csv p3.csv
  [ "$(head -1 p1.csv)" = "p0,p1,p2,class" ] || fail "header"
  [ "$(wc -l < p1.csv)" -eq 6 ] || fail "rows"
  awk -F, 'NR > 1 { s = $1 + $2 + $3; if (s < 0.999 || s > 1.001) exit 1;
                    m = 1; for (i = 2; i <= 3; i++) if ($i > $m) m = i;
                    if ($4 != m - 1) exit 1 }' p1.csv || fail "probabilities/arg-max"
  run "$FIX" predict --load p.st "$W/../idx/img.idx" > pi.csv
  [ "$(wc -l < pi.csv)" -eq 13 ] || fail "idx rows"
  run "$FIX" eval --load p.st --data "$DATA/valid.csv" > e1.txt
  grep -Eq '^examples 24  loss [0-9.]+  accuracy [0-9.]+$' e1.txt || fail "eval output"
  run "$FIX" eval --load p.st > e2.txt
  same e1.txt e2.txt
  # regression: values, standardization from the checkpoint, split held-out eval
  run "$REG" train --epochs 30 --quiet --save r.st > r.txt
  run "$REG" predict --load r.st reg_train.csv > rp.csv
  [ "$(head -1 rp.csv)" = "y0,y1" ] || fail "regression header"
  [ "$(wc -l < rp.csv)" -eq 81 ] || fail "regression rows"
  run "$REG" eval --load r.st > re.txt
  grep -q "^examples 20  loss" re.txt || fail "eval did not use the held-out split(0.25)"
  val=$(tail -1 r.txt | field val_loss)
  ev=$(field loss < re.txt)
  awk -v a="$val" -v b="$ev" 'BEGIN { d = a - b; exit !(d < 0.00006 && d > -0.00006) }' ||
    fail "eval loss $ev differs from training's last val_loss $val"
  rmse=$(field rmse < re.txt)
  awk -v r="$rmse" 'BEGIN { exit !(r < 0.25) }' || fail "regression did not learn: rmse $rmse"
  ;;
early_stop)
  # a large learning rate overshoots: training stops once val_loss has not improved for 2 epochs
  run "$FIX" train --epochs 30 --lr 2 --early-stop 2 --save es.st > es.txt
  grep -Eq '^early stop: the validation loss has not improved for 2 epochs \(best [0-9.]+ at epoch [0-9]+\)$' es.txt ||
    fail "no early stop"
  [ "$(grep -c '^epoch' es.txt)" -lt 30 ] || fail "ran all epochs"
  # resuming a run that stopped early has nothing to do
  run "$FIX" train --load es.st --epochs 30 --lr 2 --early-stop 2 --save es2.st > /dev/null 2> err.txt
  grep -q "stopped early after epoch" err.txt || fail "no note on resume"
  same es.st es2.st
  ;;
*)
  echo "unknown scenario '$name'" >&2
  exit 2
  ;;
esac
exit 0
