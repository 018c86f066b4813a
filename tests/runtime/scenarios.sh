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
# NNRT_FIXTURE_SUFFIX=_asan runs the sanitized fixtures instead
FIX=$2/nnrt_fixture${NNRT_FIXTURE_SUFFIX:-}
REG=$2/nnrt_fixture_regression${NNRT_FIXTURE_SUFFIX:-}
ASAN_OPTIONS=${ASAN_OPTIONS:-exitcode=86:detect_leaks=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:exitcode=86:print_stacktrace=1}
export ASAN_OPTIONS UBSAN_OPTIONS
DATA=$3
W=$4/$name
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 2
# the IDX files runtime.setup generated
IDX=$4/idx
[ -d "$IDX" ] || IDX=$4/../idx

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

# st_dump FILE [PREFIX]: one line per tensor whose name starts with PREFIX ("name shape sha1 of
# the bytes"), then "meta key=value" lines (python3)
st_dump() {
  python3 - "$@" <<'PY' || fail "st_dump $*"
import hashlib, json, struct, sys
raw = open(sys.argv[1], 'rb').read()
prefix = sys.argv[2] if len(sys.argv) > 2 else ''
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
data = raw[8 + n:]
for k, v in h.items():
    if k != '__metadata__' and k.startswith(prefix):
        b, e = v['data_offsets']
        print(k, v['shape'], hashlib.sha1(data[b:e]).hexdigest())
for k, v in sorted(h.get('__metadata__', {}).items()):
    print('meta %s=%s' % (k, v))
PY
}
# model_tensors FILE: the st_dump lines of the model's own tensors (no optimizer.*, __*, meta)
model_tensors() { st_dump "$1" | grep -v -e '^optimizer\.' -e '^__' -e '^meta '; }
meta() { st_dump "$1" | sed -n "s/^meta $2=//p"; }

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

# rewrite FILE 'PYTHON': runs PYTHON with the header as dict h and the data as bytearray d, then
# writes the file back with a correct, padded header length (python3)
rewrite() {
  python3 - "$@" <<'PY' || fail "rewrite $*"
import json, struct, sys
path, code = sys.argv[1], sys.argv[2]
raw = open(path, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
d = bytearray(raw[8 + n:])
exec(code)
text = json.dumps(h, separators=(',', ':')).encode()
text += b' ' * (-(8 + len(text)) % 8)
open(path, 'wb').write(struct.pack('<Q', len(text)) + text + bytes(d))
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
  run "$FIX" train --data "idx(\"$IDX/img.idx.gz\", \"$IDX/lbl.idx\", scale=1/255)" \
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
  # same seed and thread count: the same bytes (the thread count is recorded, not stored; with
  # generated kernels --threads 1 and 2 may differ in the last bits, so that is not compared)
  run "$FIX" train --epochs 2 --quiet --threads 2 --save t1.st > /dev/null
  run "$FIX" train --epochs 2 --quiet --threads 2 --save t2.st > /dev/null
  same t1.st t2.st
  run "$REG" train --quiet --threads 3 --save rt1.st > /dev/null
  run "$REG" train --quiet --threads 3 --save rt2.st > /dev/null
  same rt1.st rt2.st
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
  # 2 epochs + resume to 4 == 4 epochs, bytes and epoch lines, for both fixtures. The regression
  # fixture's cosine schedule depends on the total epochs (a 2-epoch run anneals to 0 by its
  # end), so it runs with a per-step schedule that does not: step(0.5) moves mid-epoch.
  for m in "$FIX" "$REG"; do
    set -- --schedule constant
    [ "$m" = "$REG" ] && set -- --schedule "step(0.5, gamma=0.7)"
    run "$m" train --epochs 4 --quiet --save full.st "$@" > full.txt
    run "$m" train --epochs 2 --quiet --save part.st "$@" > part1.txt
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
hostile_ckpt)
  # Checkpoints that are well-formed files but hostile values: every one is an error naming the
  # file (exit 1), in linear time, and never reaches training.
  run "$FIX" train --epochs 2 --quiet --save good.st > /dev/null
  cp good.st step.st && rewrite step.st 'h["__metadata__"]["step"] = "9223372036854775807"'
  ERE="^error: checkpoint 'step.st': metadata 'step' is 9223372036854775807, more than 9007199254740992 \(corrupt checkpoint\)$"
  fails "$FIX" train --load step.st --epochs 3 --quiet
  cp good.st epoch.st && rewrite epoch.st 'h["__metadata__"]["epoch"] = "99999999999"'
  ERE="^error: checkpoint 'epoch.st': metadata 'epoch' is 99999999999, more than 2147483647 \(corrupt checkpoint\)$"
  fails "$FIX" train --load epoch.st --epochs 3 --quiet
  # the early-stopping record is checked like the rest, and stops the run
  cp good.st best.st && rewrite best.st 'h["__metadata__"]["best_epoch"] = "x"'
  ERE="^error: checkpoint 'best.st': metadata 'best_epoch' is 'x', expected a non-negative integer$"
  fails "$FIX" train --load best.st --epochs 3 --quiet
  [ ! -s out.txt ] || fail "training went on after a metadata error"
  cp good.st wait.st && rewrite wait.st 'h["__metadata__"]["epochs_without_improvement"] = "3"'
  ERE="^error: checkpoint 'wait.st': metadata 'epochs_without_improvement' is 3, more than 2 \(corrupt checkpoint\)$"
  fails "$FIX" train --load wait.st --epochs 3 --quiet
  cp good.st loss.st && rewrite loss.st 'h["__metadata__"]["best_val_loss"] = "nan"'
  ERE="^error: checkpoint 'loss.st': metadata 'best_val_loss' is 'nan', expected 'none' or a finite number$"
  fails "$FIX" train --load loss.st --epochs 3 --quiet
  # non-finite weights: refused by every command, naming the tensor
  cp good.st nan.st && rewrite nan.st 'b = h["linear.weight"]["data_offsets"][0]; d[b + 8:b + 12] = bytes([0, 0, 0xc0, 0x7f])'
  ERE="^error: checkpoint 'nan.st': tensor 'linear.weight' holds NaN at element 2; a checkpoint holds finite values only$"
  fails "$FIX" eval --load nan.st
  fails "$FIX" predict --load nan.st "$DATA/predict.csv"
  fails "$FIX" train --load nan.st --epochs 3 --quiet
  cp good.st inf.st && rewrite inf.st 'b = h["linear.bias"]["data_offsets"][0]; d[b:b + 4] = bytes([0, 0, 0x80, 0xff])'
  ERE="^error: checkpoint 'inf.st': tensor 'linear.bias' holds -Inf at element 0; a checkpoint holds finite values only$"
  fails "$FIX" eval --load inf.st
  # a FIFO (or a device) is refused at once instead of waiting for a writer
  mkfifo fifo.st || fail "mkfifo"
  ERE="^error: checkpoint 'fifo.st' is not a regular file$"
  fails timeout 20 "$FIX" eval --load fifo.st
  # 200,000 keys: the duplicate check sorts (it compared every pair: 69 s), then the list of
  # unexpected tensors (2.3 MB header)
  python3 - <<'PY' || fail "many keys"
import json, struct
h = {"t%06d" % i: {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(200000)}
for name, dup in (("many.st", False), ("dup.st", True)):
    text = json.dumps(h, separators=(',', ':'))
    if dup:
        text = text[:-1] + ',"t199998":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}'
    text = text.encode() + b' ' * (-(8 + len(text)) % 8)
    open(name, 'wb').write(struct.pack('<Q', len(text)) + text)
PY
  # more JSON values than a header of that size can hold: refused before parsing
  python3 -c "
import struct
text = b'{' + b','.join(b'\"\":{}' for i in range(100000)) + b'}'
text += b' ' * (-(8 + len(text)) % 8)
open('values.st', 'wb').write(struct.pack('<Q', len(text)) + text)" || fail "values.st"
  ERE="^error: checkpoint 'values.st': the header holds 200001 JSON values in 600008 bytes, more than one per 4 bytes \(corrupt header\)$"
  fails "$FIX" eval --load values.st
  ERE="^error: checkpoint 'dup.st': 't199998' appears twice in the header$"
  fails timeout 20 "$FIX" eval --load dup.st
  ERE="^error: checkpoint 'many.st': 200000 unexpected tensors not in model 'fixture': 't000000', 't000001'"
  fails timeout 20 "$FIX" eval --load many.st
  ;;
csv_row_limit)
  # The 256 MiB row limit is exact, also after a header (it used to be checked only when the
  # buffer was full, so a row after a header reached 512 MiB): a row of 2^28 bytes loads, one
  # byte more is an error. The padding is leading spaces, which the row's text includes.
  python3 - <<'PY' || fail "mkcsv"
row = b'0.1,0.2,0.3,0.4,0'
for name, extra in (("fits.csv", 0), ("over.csv", 1)):
    with open(name, 'wb') as f:
        f.write(b'f0,f1,f2,f3,label\n0.5,0.6,0.7,0.8,1\n')
        f.write(b' ' * ((256 << 20) - len(row) + extra) + row + b'\r\n')
PY
  run "$FIX" train --epochs 1 --quiet --validate none --data fits.csv > fits.txt
  grep -q '^epoch 1/1  train_loss' fits.txt || fail "fits.csv did not train"
  ERE="^over.csv:3:1: error: this row is longer than the 256 MiB limit \(not a CSV file, or a quoted cell that never ends\?\)$"
  fails "$FIX" train --epochs 1 --quiet --validate none --data over.csv
  rm -f fits.csv over.csv
  ;;
diverge)
  # a huge learning rate: the loss overflows at epoch 2, step 2; exit 1, the error names epoch and
  # step, and the last good checkpoint (epoch 1) is untouched and still loads
  run "$REG" train --epochs 1 --quiet --save ok.st > /dev/null
  cp ok.st copy.st
  ERE="^error: loss became infinite at epoch 2, step 2 \(batch of 16 examples\)$"
  fails "$REG" train --load ok.st --epochs 3 --lr 1e30 --save ok.st --quiet
  grep -q "^hint: lower the learning rate" err.txt || fail "no hint"
  grep -q "^note: the checkpoint 'ok.st' from epoch 1 is untouched$" err.txt || fail "no note"
  [ "$(grep -c '^epoch' out.txt)" -eq 0 ] || fail "epoch 2 was reported"
  same ok.st copy.st
  run "$REG" eval --load ok.st > /dev/null
  run "$REG" train --load ok.st --epochs 2 --save ok2.st --quiet > /dev/null
  ls | grep -q tmp && fail "temporary files left behind"
  # a NaN loss (inf - inf in the softmax, from values near the float32 limit), mid-run
  run "$FIX" train --epochs 1 --quiet --save c.st > /dev/null
  cp c.st c0.st
  ERE="^error: loss became NaN at epoch 2, step 1 \(batch of 3 examples\)$"
  fails "$FIX" train --load c.st --epochs 2 --data "$DATA/extreme_values.csv" --validate none --save c.st --quiet
  grep -q "^note: the checkpoint 'c.st' from epoch 1 is untouched$" err.txt || fail "no note (NaN)"
  same c.st c0.st
  # diverging before the first save: nothing is written at all
  ERE="^error: loss became infinite at epoch 1, step 2 \(batch of 16 examples\)$"
  fails "$REG" train --epochs 3 --lr 1e30 --save new.st --quiet
  grep -q "^note: nothing was saved to 'new.st'$" err.txt || fail "no note (nothing saved)"
  [ ! -e new.st ] || fail "new.st was written"
  ls | grep -q tmp && fail "temporary files left behind"
  # an unwritable destination: error, exit 1, nothing left behind
  ERE="^error: --save '$W/no/such/dir/x.st': cannot create a file in '$W/no/such/dir' \(No such file or directory\); choose a writable path"
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
# cosine(warmup=1) over 2 epochs of 4 steps (60 examples, batch 16), per step: the log's lr is the
# last step's, 4/4 of the warm-up, then t = 7/4 on the cosine over the second epoch
import math
assert rows[0]["lr"] == 0.05, rows[0]["lr"]
assert abs(rows[1]["lr"] - 0.05 * 0.5 * (1 + math.cos(math.pi * 0.75))) < 1e-15, rows[1]["lr"]
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
  run "$FIX" predict --load p.st "$IDX/img.idx" > pi.csv
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
  # a large learning rate overshoots: training stops once val_loss has not improved for 2 epochs,
  # and the checkpoint then holds the weights of the best validation epoch (epoch 2 here)
  run "$FIX" train --epochs 30 --lr 2 --early-stop 2 --save es.st > es.txt
  grep -Eq '^early stop: the validation loss has not improved for 2 epochs \(best [0-9.]+ at epoch 2\); keeping the weights of epoch 2$' es.txt ||
    { cat es.txt >&2; fail "no early stop at epoch 4 with the best at epoch 2"; }
  [ "$(grep -c '^epoch' es.txt)" -eq 4 ] || fail "expected 4 epochs"
  [ "$(meta es.st epoch)" = 4 ] && [ "$(meta es.st best_epoch)" = 2 ] &&
    [ "$(meta es.st epochs_without_improvement)" = 2 ] || fail "metadata: epoch/best_epoch/wait"
  # the same run cut at epoch 2: identical model tensors (weights and buffers), bit for bit
  run "$FIX" train --epochs 2 --lr 2 --early-stop 2 --save best.st > best.txt
  model_tensors es.st > a.txt
  model_tensors best.st > b.txt
  same a.txt b.txt
  # ... and not those of the last epoch
  run "$FIX" train --epochs 4 --lr 2 --save last.st > /dev/null
  model_tensors last.st > c.txt
  ! cmp -s a.txt c.txt || fail "the checkpoint holds the last epoch's weights"
  ! st_dump es.st | grep -q '^__best' || fail "a stopped run's checkpoint keeps __best.* tensors"
  # eval of the checkpoint reproduces epoch 2's validation loss
  run "$FIX" eval --load es.st > ev.txt
  v2=$(grep '^epoch 2/' es.txt | field val_loss)
  ev=$(field loss < ev.txt)
  awk -v a="$v2" -v b="$ev" 'BEGIN { d = a - b; exit !(d < 0.00006 && d > -0.00006) }' ||
    fail "eval loss $ev is not epoch 2's val_loss $v2"
  # killed after epoch 3 (best still epoch 2): the checkpoint carries the best weights as __best.*,
  # so the resumed run stops the same way, with the same bytes
  run "$FIX" train --epochs 3 --lr 2 --early-stop 2 --save mid.st > /dev/null
  st_dump mid.st | grep -q '^__best.linear.weight \[3, 4\]' || fail "no __best.* tensors"
  st_dump mid.st | sed -n 's/^__best\.//p' > d.txt
  same d.txt b.txt
  run "$FIX" eval --load mid.st > /dev/null  # eval and predict accept (and ignore) __best.*
  run "$FIX" train --load mid.st --epochs 30 --lr 2 --early-stop 2 --save mid.st > mid.txt
  grep -q 'keeping the weights of epoch 2$' mid.txt || fail "resumed run did not stop at epoch 4"
  same es.st mid.st
  # resuming a run that stopped early has nothing to do
  run "$FIX" train --load es.st --epochs 30 --lr 2 --early-stop 2 --save es2.st > /dev/null 2> err.txt
  grep -q "stopped early after epoch" err.txt || fail "no note on resume"
  same es.st es2.st
  # a larger patience continues from the best weights (epoch 2's), not the last ones
  run "$FIX" train --load es.st --epochs 5 --lr 2 --early-stop 5 --save more.st > more.txt
  grep -q '^epoch 5/5' more.txt || fail "did not continue"
  ;;
best_val)
  # the best validation loss and its epoch are recorded whenever there is validation data, not
  # only under early stopping: they equal the minimum of the logged val_loss (full precision)
  run "$FIX" train --epochs 5 --lr 2 --save b.st --log b.jsonl --quiet > /dev/null
  best_of_log() {
    python3 - "$1" <<'PY' || fail "best_of_log $1"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
best = min(rows, key=lambda r: r["val_loss"])
print(repr(best["val_loss"]), best["epoch"])
PY
  }
  set -- $(best_of_log b.jsonl)
  [ "$2" = 2 ] || fail "the fixture's lr 2 run should have its best val_loss at epoch 2, log says $2"
  python3 -c "import sys; sys.exit(float(sys.argv[1]) != float(sys.argv[2]))" "$(meta b.st best_val_loss)" "$1" ||
    fail "best_val_loss $(meta b.st best_val_loss) is not the log's minimum $1"
  [ "$(meta b.st best_epoch)" = 2 ] && [ "$(meta b.st epochs_without_improvement)" = 0 ] ||
    fail "best_epoch $(meta b.st best_epoch) / epochs_without_improvement (counted only by early stopping)"
  # resuming without early stopping keeps the record: 2 more epochs, the best over all 7
  run "$FIX" train --load b.st --epochs 7 --lr 2 --save b7.st --log b.jsonl --quiet > /dev/null
  set -- $(best_of_log b.jsonl)
  python3 -c "import sys; sys.exit(float(sys.argv[1]) != float(sys.argv[2]))" "$(meta b7.st best_val_loss)" "$1" &&
    [ "$(meta b7.st best_epoch)" = "$2" ] || fail "after resuming: best $(meta b7.st best_val_loss) at $(meta b7.st best_epoch), log: $*"
  # without validation there is no record
  run "$FIX" train --epochs 2 --validate none --save n.st --quiet > /dev/null
  [ "$(meta n.st best_val_loss)" = none ] && [ "$(meta n.st best_epoch)" = 0 ] || fail "no validation: $(meta n.st best_val_loss)"
  # early stopping without validation is ignored for every epoch (it used to stop after N epochs,
  # comparing NaN losses, and "keep the weights of epoch 0")
  run "$FIX" train --epochs 6 --lr 2 --validate none --early-stop 2 > ns.txt 2> ns_err.txt
  [ "$(grep -c '^epoch' ns.txt)" -eq 6 ] && ! grep -q '^early stop' ns.txt || fail "early stop without validation data"
  [ "$(grep -c 'early stopping needs a validation set' ns_err.txt)" -eq 1 ] || fail "the warning is not given once"
  # early stopping resumed from a run without it cannot restore that record's weights: it says so
  # and counts from the loaded weights
  run "$FIX" train --load b.st --epochs 8 --lr 2 --early-stop 2 --save e.st > /dev/null 2> e_err.txt
  grep -qx "note: checkpoint 'b.st' was trained without early stopping (best validation loss at epoch 2, whose weights it does not hold); early stopping counts from epoch 6" e_err.txt ||
    { cat e_err.txt >&2; fail "no note when early stopping resumes a run without it"; }
  be=$(meta e.st best_epoch)
  [ "$be" -ge 6 ] && [ $(( be + $(meta e.st epochs_without_improvement) )) -eq "$(meta e.st epoch)" ] ||
    fail "early stopping's record after resuming: best_epoch $be"
  ;;
save_best)
  # --save-best keeps the checkpoint of the epoch with the lowest val_loss: the fixture's 8 epochs
  # have theirs at epoch 7 (the last is worse), so the kept file is not the last state
  run "$FIX" train --epochs 8 --save-best best.st --save last.st --log sb.jsonl > sb.txt
  set -- $(python3 - sb.jsonl <<'PY' || fail "log"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
best = min(rows, key=lambda r: r["val_loss"])
print(best["epoch"], "%.6f" % best["val_loss"], repr(best["val_loss"]))
PY
)
  [ "$1" = 7 ] || fail "the fixture's best val_loss should be at epoch 7, the log says $1"
  [ "$(meta best.st epoch)" = 7 ] || fail "best.st holds epoch $(meta best.st epoch)"
  python3 -c "import sys; sys.exit(float(sys.argv[1]) != float(sys.argv[2]))" "$(meta best.st best_val_loss)" "$3" ||
    fail "best.st's best_val_loss $(meta best.st best_val_loss), the log's $3"
  grep -qx "saved 'best.st' (epoch 7, the best val_loss $(printf '%.4f' "$3"))" sb.txt || fail "the closing line"
  ! cmp -s best.st last.st || fail "best.st is the last epoch's state"
  # its weights are epoch 7's: eval on the validation set gives the logged val_loss, and a run of
  # exactly 7 epochs writes the same bytes (constant schedule: epochs 1..7 do not depend on 8)
  run "$FIX" eval --load best.st > ev.txt
  [ "$(field loss < ev.txt)" = "$2" ] || fail "eval of best.st: $(cat ev.txt), the log's val_loss $2"
  run "$FIX" train --epochs 7 --quiet --save seven.st > /dev/null
  same best.st seven.st
  # refused before training: no validation set, the same file as --save or --load, a directory
  ERE="^error: --save-best keeps the epoch with the best validation loss, but there is no validation set$"
  fails "$FIX" train --epochs 1 --validate none --save-best x.st
  grep -q "^hint: give one with --validate SPEC" err.txt || fail "hint"
  ERE="^error: --save-best 'last.st' is also the --save file; the best epoch's checkpoint needs a file of its own$"
  fails "$FIX" train --epochs 1 --save last.st --save-best last.st
  ERE="^error: --save-best '.' is a directory; give a file name, e.g. --save-best ./model.safetensors$"
  fails "$FIX" train --epochs 1 --save-best .
  [ ! -e x.st ] || fail "x.st written"
  # resuming: only an epoch better than the checkpoint's record is written
  rm -f best2.st
  run "$FIX" train --load best.st --epochs 8 --save-best best2.st > r.txt 2> r_err.txt
  # (epoch 8 resumed from epoch 7 is the first run's epoch 8, worse than 7)
  [ ! -e best2.st ] && grep -q "^note: no epoch of this run improved on the best validation loss of the checkpoint 'best.st'" r_err.txt ||
    fail "resumed run: $(cat r_err.txt)"
  ;;
string_labels)
  # class labels given as names: ids in sorted order, stored in the checkpoint, printed by predict
  python3 - "$DATA" <<'PY' || fail "making the files"
import csv, sys
data = sys.argv[1]
def relabel(src, dst, names, edit=None):
    rows = list(csv.reader(open(f"{data}/{src}")))
    with open(dst, "w", newline="") as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(rows[0])
        for i, r in enumerate(rows[1:]):
            w.writerow(r[:-1] + [edit if edit and i == 4 else names[r[-1]]])
same_order = {"0": "cat", "1": "dog", "2": "emu"}       # sorted like the ids
shuffled = {"0": "zebra", "1": "ant", "2": "moth"}      # sorted: ant 0, moth 1, zebra 2
relabel("train.csv", "s_train.csv", same_order)
relabel("valid.csv", "s_valid.csv", same_order)
relabel("valid.csv", "s_unseen.csv", same_order, edit="dogs")
relabel("train.csv", "z_train.csv", shuffled)
relabel("valid.csv", "z_valid.csv", shuffled)
relabel("train.csv", "four.csv", same_order, edit="gnu")
relabel("train.csv", "mixed.csv", {"0": "1", "1": "2", "2": "many"})
relabel("train.csv", "q_train.csv", {"0": "a,b", "1": 'say "hi"', "2": "edge"})
# where the edited label is: line 6 (header, then row index 4), after the last comma
line = open("s_unseen.csv").read().split("\n")[5]
print(line.rindex(",") + 2, file=open("unseen_col", "w"))
PY
  # names sorted like the ids train the same weights as the ids themselves
  run "$FIX" train --epochs 3 --quiet --save int.st > /dev/null
  run "$FIX" train --epochs 3 --quiet --data s_train.csv --validate s_valid.csv --save str.st > /dev/null
  [ "$(model_tensors int.st)" = "$(model_tensors str.st)" ] || fail "names in id order trained other weights"
  [ "$(meta str.st labels)" = '["cat","dog","emu"]' ] || fail "labels metadata: $(meta str.st labels)"
  [ -z "$(meta int.st labels)" ] || fail "integer ids got a labels entry"
  # predict names the columns and the class; the probabilities are the integer model's
  run "$FIX" predict --load int.st "$DATA/predict.csv" > pi.csv
  run "$FIX" predict --load str.st "$DATA/predict.csv" > ps.csv
  [ "$(head -1 ps.csv)" = "p_cat,p_dog,p_emu,class" ] || fail "header $(head -1 ps.csv)"
  [ "$(tail -n +2 pi.csv | cut -d, -f1-3)" = "$(tail -n +2 ps.csv | cut -d, -f1-3)" ] || fail "probabilities"
  [ "$(tail -n +2 pi.csv | cut -d, -f4 | sed 's/^0$/cat/; s/^1$/dog/; s/^2$/emu/')" = "$(tail -n +2 ps.csv | cut -d, -f4)" ] ||
    fail "class names: $(cat ps.csv)"
  # eval maps the file's names onto the checkpoint's ids: the integer model's numbers
  run "$FIX" eval --load int.st --data "$DATA/valid.csv" > ei.txt
  run "$FIX" eval --load str.st --data s_valid.csv > es.txt
  same ei.txt es.txt
  # names in another order: sorted ids, and predict's names are the arg-max column's
  run "$FIX" train --epochs 3 --quiet --data z_train.csv --validate z_valid.csv --save z.st > /dev/null
  [ "$(meta z.st labels)" = '["ant","moth","zebra"]' ] || fail "sorted labels: $(meta z.st labels)"
  run "$FIX" eval --load z.st --data z_valid.csv > ez.txt
  tail -n +2 z_valid.csv | cut -d, -f5 > truth.txt
  run "$FIX" predict --load z.st z_valid.csv > pz.csv
  [ "$(head -1 pz.csv)" = "p_ant,p_moth,p_zebra,class" ] || fail "header $(head -1 pz.csv)"
  python3 - pz.csv truth.txt "$(field accuracy < ez.txt)" <<'PY' || fail "predict's names"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
names = [h[2:] for h in rows[0][:-1]]
truth = open(sys.argv[2]).read().split()
right = 0
for r, t in zip(rows[1:], truth):
    p = [float(v) for v in r[:-1]]
    assert r[-1] == names[p.index(max(p))], r
    right += r[-1] == t
acc = right / len(truth)
assert abs(acc - float(sys.argv[3])) < 1e-6 and acc > 0.9, (acc, sys.argv[3])
PY
  # a validation label the training data lacks names itself, its file, line and column
  ERE="^s_unseen.csv:6:$(cat unseen_col): error: label 'dogs' is not one of the 3 labels of the training data \('cat', 'dog', 'emu'\); did you mean 'dog'\?$"
  fails "$FIX" train --epochs 1 --data s_train.csv --validate s_unseen.csv
  ERE="^s_unseen.csv:6:$(cat unseen_col): error: label 'dogs' is not one of the 3 labels of checkpoint 'str.st' \('cat', 'dog', 'emu'\); did you mean 'dog'\?$"
  fails "$FIX" eval --load str.st --data s_unseen.csv
  # names against integer ids either way, more names than classes
  ERE="^s_valid.csv:2:[0-9]+: error: the class labels here are names \('cat', ...\), but those of checkpoint 'int.st' are integer ids$"
  fails "$FIX" eval --load int.st --data s_valid.csv
  ERE="^error: .*valid.csv: label '0' is not one of the 3 labels of checkpoint 'str.st' \('cat', 'dog', 'emu'\)$"
  fails "$FIX" eval --load str.st --data "$DATA/valid.csv"
  ERE="^four.csv:6:[0-9]+: error: label 'gnu' makes 4 distinct class labels, but target 'label' has 3 classes \\(class\\[3\\]\\)$"
  fails "$FIX" train --epochs 1 --data four.csv --validate none
  grep -qx "note: the training data has 4 labels: 'cat', 'dog', 'emu', 'gnu'" err.txt || fail "note: $(cat err.txt)"
  # numbers among names are names, and it says so
  run "$FIX" train --epochs 1 --quiet --data mixed.csv --validate none --save mixed.st 2> mixed.err > /dev/null
  grep -q "^note: mixed.csv: the labels of column 'label' are names ('many' on line [0-9]* is not a number), so numbers among them such as '[12]' are names too, ordered as text$" mixed.err ||
    fail "mixed note: $(cat mixed.err)"
  [ "$(meta mixed.st labels)" = '["1","2","many"]' ] || fail "mixed labels $(meta mixed.st labels)"
  # names that need CSV quoting come back from predict as the same names (csv.reader)
  run "$FIX" train --epochs 3 --quiet --data q_train.csv --validate none --save q.st > /dev/null
  run "$FIX" predict --load q.st q_train.csv > pq.csv
  python3 - pq.csv <<'PY' || fail "quoted names: $(head -3 pq.csv)"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0] == ["p_a,b", "p_edge", 'p_say "hi"', "class"], rows[0]
assert {r[-1] for r in rows[1:]} == {"edge", "a,b", 'say "hi"'}, rows[1:4]
PY
  # split()'s warning about a class missing from the held-out tail names it
  sed -e '2,$s/,0$/,cat/; 2,$s/,1$/,dog/; 2,$s/,2$/,emu/' ../csv/sorted.csv > s_sorted.csv || fail "sorted.csv"
  run "$FIX" train --epochs 1 --quiet --data s_sorted.csv --validate "split(0.2, shuffle=false)" 2> split.err > /dev/null
  grep -q "^warning: the held-out part of split(0.2, shuffle=false) has no example of class 0 ('cat'), which the training part has" split.err ||
    fail "split warning: $(cat split.err)"
  ;;
confusion)
  # eval --confusion against a matrix worked out by hand: weights that predict the arg-max of the
  # first three features, and 10 rows whose predictions are chosen
  python3 - <<'PY' || fail "making the files"
import json, struct
def st(path, meta):
    w = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    tensors = [("linear.weight", [3, 4], w), ("linear.bias", [3], [0, 0, 0]), ("stats.seen", [1], [0])]
    head, blob = {"__metadata__": meta}, b""
    for name, shape, vals in tensors:
        head[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(blob), len(blob) + 4 * len(vals)]}
        blob += struct.pack("<%df" % len(vals), *vals)
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + blob)
st("hand.st", {})
st("named.st", {"labels": json.dumps(["ant", "bee", "cow"])})
onehot = {0: "1,0,0,0", 1: "0,1,0,0", 2: "0,0,1,0"}
# (true, predicted): class 0 -> 0 0 0 1, class 1 -> 1 1 2, class 2 -> 2 0 0
pairs = [(0, 0), (0, 0), (0, 0), (0, 1), (1, 1), (1, 1), (1, 2), (2, 2), (2, 0), (2, 0)]
names = ["ant", "bee", "cow"]
with open("conf.csv", "w") as f, open("conf_named.csv", "w") as g:
    f.write("f0,f1,f2,f3,label\n")
    g.write("f0,f1,f2,f3,label\n")
    for t, p in pairs:
        f.write("%s,%d\n" % (onehot[p], t))
        g.write("%s,%s\n" % (onehot[p], names[t]))
PY
  # by hand: precision = tp / column sum, recall = tp / row sum, f1 = 2pr / (p + r)
  #   class 0: 3/5 = 0.6,    3/4 = 0.75,   0.9/1.35 = 0.6667
  #   class 1: 2/3 = 0.6667, 2/3 = 0.6667, 0.6667
  #   class 2: 1/2 = 0.5,    1/3 = 0.3333, 0.3333/0.8333 = 0.4
  #   macro (means): 0.5889, 0.5833, 0.5778; weighted by support 4, 3, 3: 0.59, 0.6, 0.5867
  cat > want.txt <<'TXT'

confusion matrix (rows: true class, columns: predicted class; 10 examples)
              0  1  2
0             3  1  0
1             0  2  1
2             2  0  1

class         precision  recall     f1         support
0             0.6000     0.7500     0.6667     4
1             0.6667     0.6667     0.6667     3
2             0.5000     0.3333     0.4000     3
macro avg     0.5889     0.5833     0.5778     10
weighted avg  0.5900     0.6000     0.5867     10
accuracy 0.6000 (6 of 10)
TXT
  run "$FIX" eval --load hand.st --data conf.csv --confusion > got.txt
  head -1 got.txt | grep -q "^examples 10  loss [0-9.]*  accuracy 0.600000$" || fail "eval line: $(head -1 got.txt)"
  tail -n +2 got.txt > got_matrix.txt
  same want.txt got_matrix.txt
  # the checkpoint's label names head the rows and columns; the numbers do not change
  run "$FIX" eval --load named.st --data conf_named.csv --confusion --batch 3 > got_named.txt
  cat > want_named.txt <<'TXT'

confusion matrix (rows: true class, columns: predicted class; 10 examples)
              ant  bee  cow
ant             3    1    0
bee             0    2    1
cow             2    0    1

class         precision  recall     f1         support
ant           0.6000     0.7500     0.6667     4
bee           0.6667     0.6667     0.6667     3
cow           0.5000     0.3333     0.4000     3
macro avg     0.5889     0.5833     0.5778     10
weighted avg  0.5900     0.6000     0.5867     10
accuracy 0.6000 (6 of 10)
TXT
  tail -n +2 got_named.txt > got_named_matrix.txt
  same want_named.txt got_named_matrix.txt
  # only class targets
  ERE="^error: eval --confusion counts predicted against true classes, but target 'y' of model 'fixture_regression' is real-valued$"
  fails "$REG" eval --load hand.st --confusion
  ;;
sigkill)
  # Training killed with SIGKILL at 32 moments drawn from a fixed seed, while it saves a checkpoint
  # after every epoch (an epoch of 10000 examples takes about a ms, and so does a save with its
  # fsyncs, so many kills land mid-save; the count is printed, not asserted). After every
  # kill: the checkpoint, once there, is never missing, loads (eval), and resumes and finishes an
  # epoch; only FILE.tmp.<pid> files (never in place of FILE) may be left, and the next save
  # removes them. At the end the run resumed 32 times is bit-identical to an uninterrupted one.
  "$2/nnrt_mkdata" --csv 10000 big.csv || fail "mkdata"
  T="--data big.csv --validate none --quiet"
  epoch_of() { grep -ao '"epoch":"[0-9]*"' "$1" | tr -dc 0-9; }
  # kill times scale with how long loading and one epoch take here (sanitizer builds are slower)
  t0=$(date +%s%N)
  run "$FIX" train $T --epochs 1 --save probe.st > /dev/null
  t1=$(( ($(date +%s%N) - t0) / 1000000 )) 2> /dev/null || t1=50
  [ "$t1" -gt 0 ] 2> /dev/null || t1=50
  x=20240611 kills=0 mid_save=0 last=0
  while [ $kills -lt 32 ]; do
    x=$(( x * 16807 % 2147483647 ))
    ms=$(( t1 / 2 + x % (2 * t1 + 20) ))
    had=0 load=
    [ -e ck.st ] && had=1 load="--load ck.st"
    "$FIX" train $T --epochs 1000000 --save ck.st $load > /dev/null 2> run.err &
    pid=$!
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -9 $pid 2> /dev/null
    wait $pid
    st=$?
    kills=$((kills + 1))
    [ $st -eq 137 ] || { cat run.err >&2; fail "kill $kills: exit status $st, expected 137 (SIGKILL)"; }
    [ -e "ck.st.tmp.$pid" ] && mid_save=$((mid_save + 1))
    stray=$(ls | grep '^ck\.st' | grep -v -e '^ck\.st$' -e '^ck\.st\.tmp\.[0-9]*$')
    [ -z "$stray" ] || fail "kill $kills: unexpected files $stray"
    [ $had -eq 0 ] || [ -e ck.st ] || fail "kill $kills: the checkpoint disappeared"
    [ -e ck.st ] || continue
    run "$FIX" eval --load ck.st --data big.csv > /dev/null
    e=$(epoch_of ck.st)
    [ "$e" -ge "$last" ] || fail "kill $kills: the checkpoint went back from epoch $last to $e"
    last=$e
    run "$FIX" train $T --load ck.st --epochs $((e + 1)) --save next.st > /dev/null
    [ "$(epoch_of next.st)" -eq $((e + 1)) ] || fail "kill $kills: resuming did not finish epoch $((e + 1))"
  done
  [ -e ck.st ] || fail "no checkpoint was ever saved"
  n=$(( $(epoch_of ck.st) + 2 ))
  run "$FIX" train $T --load ck.st --epochs $n --save ck.st > /dev/null
  ! ls | grep -q '\.tmp\.' || fail "stale temporary files survived a save: $(ls | grep '\.tmp\.')"
  run "$FIX" train $T --epochs $n --save ref.st > /dev/null
  same ck.st ref.st
  # only temporary files of dead processes are removed, and only those of this checkpoint
  : > ck.st.tmp.999999999; : > ck.st.tmp.1; : > ck.st.tmp.12x; : > other.st.tmp.999999999
  run "$FIX" train $T --load ck.st --epochs $((n + 1)) --save ck.st > /dev/null
  [ ! -e ck.st.tmp.999999999 ] || fail "a dead process's temporary file was not removed"
  [ -e ck.st.tmp.1 ] || fail "the temporary file of a live process (pid 1) was removed"
  [ -e ck.st.tmp.12x ] && [ -e other.st.tmp.999999999 ] || fail "a file that is not ours was removed"
  echo "sigkill: $kills kills $((t1 / 2))..$((t1 / 2 + 2 * t1 + 19)) ms into a run (a 1-epoch run takes ${t1} ms), $mid_save of them during a save; after $n epochs identical to an uninterrupted run"
  ;;
bounded)
  # Loading under a 24 MB address-space limit (not registered for sanitizer builds, which reserve
  # terabytes of shadow memory). IDX headers advertising 8 GiB (under the 16 GiB limit) and 10^12
  # bytes are refused before anything is allocated for the data: from the file size for a plain
  # file, from deflate's largest expansion for gzip, from the limit for absurd sizes.
  lim() { (ulimit -v 24000 && exec "$@"); }
  ERE="^error: $IDX/eight_gib.idx: byte offset 16: unexpected end of file: expected 8589934592 bytes of image data, the file has only 0$"
  fails lim "$FIX" train --epochs 1 --validate none --data "idx(\"$IDX/eight_gib.idx\", \"$IDX/lbl.idx\")"
  ERE="^error: $IDX/eight_gib.idx.gz: byte offset 16: the header describes 8589934592 bytes of image data, more than the rest of this gzip file can hold"
  fails lim "$FIX" train --epochs 1 --validate none --data "idx(\"$IDX/eight_gib.idx.gz\", \"$IDX/lbl.idx\")"
  ERE="^error: $IDX/tera.idx: byte offset 4: 1000000 examples of 1000x1000 bytes are 1000000000000 bytes, more than the 16 GiB limit"
  fails lim "$FIX" train --epochs 1 --validate none --data "idx(\"$IDX/tera.idx\", \"$IDX/lbl.idx\")"
  # a 98 MB checkpoint header that is one array of zeros: refused from its text, within 200 MB
  # (the file itself is read whole); parsed, it took 3.2 GB
  python3 -c "
import struct
text = b'{\"a\":[' + b'0,' * 49000000 + b'0]}'
text += b' ' * (-(8 + len(text)) % 8)
open('array.st', 'wb').write(struct.pack('<Q', len(text)) + text)" || fail "array.st"
  ERE="^error: checkpoint 'array.st': an array in the header at byte 29 has more than 8 elements; a shape has at most 8 \(corrupt header\)$"
  fails sh -c 'ulimit -v 200000 && exec "$@"' sh "$FIX" eval --load array.st
  rm -f array.st
  # CSV streams: 33 MB of text (200000 rows of 40-character numbers) holds 4 MB of values, and
  # loads and trains within the same 24 MB (reading the whole text first would not fit)
  "$2/nnrt_mkdata" --csv 200000 wide.csv 40 || fail "mkdata"
  [ "$(wc -c < wide.csv)" -gt 30000000 ] || fail "wide.csv is too small to prove anything"
  run lim "$FIX" train --epochs 1 --quiet --validate none --data wide.csv > wide.txt
  grep -q '^epoch 1/1  train_loss' wide.txt || fail "wide.csv did not train"
  # the same under gzip
  gzip -1 -c wide.csv > wide.csv.gz && rm wide.csv || fail "gzip"
  run lim "$FIX" train --epochs 1 --quiet --validate none --data wide.csv.gz > wide_gz.txt
  untimed wide.txt > a.txt
  untimed wide_gz.txt > b.txt
  same a.txt b.txt
  ;;
*)
  echo "unknown scenario '$name'" >&2
  exit 2
  ;;
esac
exit 0
