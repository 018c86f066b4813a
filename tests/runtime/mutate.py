#!/usr/bin/python3
"""mutate.py — seeded random mutations of valid data files, through the sanitized fixture.

    mutate.py BIN_DIR DATA_DIR WORK_DIR [COUNT] [SEED]

Beside the hand-written corpus (corpus.txt), this flips, inserts and deletes bytes and truncates
valid CSV, gzip'd CSV and IDX files (plain and gzip), COUNT times from a fixed SEED, and runs each
through nnrt_fixture_asan. Every run must exit 0 or 1 with no sanitizer report, and a failure must
print exactly one `error:` line. The same seed gives the same files, so a failure reproduces.
"""
import gzip
import os
import random
import subprocess
import sys


def main():
    bin_dir, data_dir, work = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    exe = os.path.join(bin_dir, 'nnrt_fixture_asan')
    idx = os.path.join(work, 'idx')
    out = os.path.join(work, 'mutate')
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ, ASAN_OPTIONS='exitcode=86:detect_leaks=1',
               UBSAN_OPTIONS='halt_on_error=1:exitcode=86:print_stacktrace=1')
    train = open(os.path.join(data_dir, 'train.csv'), 'rb').read()
    bases = {  # name: (bytes, file name, spec with {} for the file)
        'csv': (train, 'm.csv', '{}'),
        'csvgz': (gzip.compress(train, mtime=0), 'm.csv.gz', '{}'),
        'img': (open(os.path.join(idx, 'img.idx'), 'rb').read(), 'm.idx',
                'idx("{}", "%s/lbl.idx")' % idx),
        'imggz': (open(os.path.join(idx, 'img.idx.gz'), 'rb').read(), 'm.idx.gz',
                  'idx("{}", "%s/lbl.idx")' % idx),
        'lbl': (open(os.path.join(idx, 'lbl.idx'), 'rb').read(), 'l.idx',
                'idx("%s/img.idx", "{}")' % idx),
    }
    r = random.Random(seed)
    failures = 0
    for i in range(count):
        kind = sorted(bases)[r.randrange(len(bases))]
        base, name, spec = bases[kind]
        d = bytearray(base)
        for _ in range(r.randint(1, 6)):
            p, op = r.randrange(len(d)), r.random()
            if op < 0.4:
                d[p] = r.randrange(256)
            elif op < 0.6:
                del d[p]
            elif op < 0.8:
                d[p:p] = bytes([r.randrange(256)])
            else:
                del d[p:]
            if not d:
                d = bytearray(b'\n')
        path = os.path.join(out, name)
        with open(path, 'wb') as f:
            f.write(d)
        cmd = [exe, 'train', '--data', spec.format(path), '--validate', 'none', '--epochs', '1',
               '--quiet']
        p = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
        err = p.stderr.decode(errors='replace')
        why = None
        if any(s in err for s in ('Sanitizer', 'runtime error:')):
            why = 'sanitizer report'
        elif p.returncode not in (0, 1):
            why = 'exit status %d' % p.returncode
        elif p.returncode == 1 and err.count('error:') != 1:
            why = '%d error lines' % err.count('error:')
        if why:
            failures += 1
            keep = os.path.join(out, 'fail%d-%s' % (i, name))
            os.replace(path, keep)
            print('FAIL mutation %d (%s): %s; the file is kept as %s\n%s' % (i, kind, why, keep,
                                                                          err[:2000]))
    print('mutate: %d mutations (seed %d), %d failed' % (count, seed, failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
