#!/usr/bin/env python3
"""Writes a dataset folder (base.fvecs, query.fvecs, groundtruth.ivecs) in which most base
vectors are copies of one point: the case that cut quiver's HNSW graph apart before
2026-11-22 (BENCHMARKS.md, "Copies of one point"). Pure Python, deterministic.

usage: dup-dataset.py OUT_DIR [--copies 2000] [--others 200] [--queries 100] [--dim 8]
       [--copies-first | --interleaved]
Ground truth is exact l2 top-10 with ties broken by the lower id.
"""
import argparse, os, random, struct


def write_vecs(path, rows, code):
    with open(path, 'wb') as f:
        for r in rows:
            f.write(struct.pack('<i', len(r)) + struct.pack('<%d%s' % (len(r), code), *r))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--copies', type=int, default=2000)
    ap.add_argument('--others', type=int, default=200)
    ap.add_argument('--queries', type=int, default=100)
    ap.add_argument('--dim', type=int, default=8)
    ap.add_argument('--interleaved', action='store_true',
                    help='alternate copies and other points (default: all copies first)')
    a = ap.parse_args()
    rng = random.Random(7)
    point = [0.5] * a.dim
    others = [[rng.uniform(-1, 1) for _ in range(a.dim)] for _ in range(a.others)]
    if a.interleaved:
        base, c, o = [], a.copies, list(others)
        while c or o:
            if c:
                base.append(point); c -= 1
            if o:
                base.append(o.pop(0))
    else:
        base = [point] * a.copies + others
    queries = [[rng.uniform(-1, 1) for _ in range(a.dim)] for _ in range(a.queries)]
    truth = []
    for q in queries:
        d = [(sum((x - y) ** 2 for x, y in zip(q, b)), i) for i, b in enumerate(base)]
        d.sort()
        truth.append([i for _, i in d[:10]])
    os.makedirs(a.out, exist_ok=True)
    write_vecs(os.path.join(a.out, 'base.fvecs'), base, 'f')
    write_vecs(os.path.join(a.out, 'query.fvecs'), queries, 'f')
    write_vecs(os.path.join(a.out, 'groundtruth.ivecs'), truth, 'i')


if __name__ == '__main__':
    main()
