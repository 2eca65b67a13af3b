#!/usr/bin/env python3
"""Where a tenant's memory goes, from two dhat heap profiles (`--features dhat-heap`):

    scripts/dhat-per-tenant.py ONE.json MANY.json N [--top 15]

ONE.json from a run with 1 tenant, MANY.json with N tenants (same config otherwise, no
scrape during the run). Heap blocks live at the global peak (dhat's "t-gmax") are
grouped by their innermost frame in this crate's files (the code that asked), and
per site (bytes(MANY) - bytes(ONE)) / (N - 1) is printed: bytes per tenant. See
BENCHMARKS.md, "Many tenants", for the exact run.
"""
import argparse
import collections
import json
import os
import re

# Line tables name this crate's files "<checkout dir>/src/…" (dependencies:
# "<crate>-<version>/src/…" or "src/…"), so a frame is ours by that prefix.
# Inlined frames may say just "src/…": ours if that file exists here (not lib.rs/main.rs,
# which every crate has). src/allocator.rs is the global allocator itself: skipped.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.basename(REPO)
OURS = re.compile(r"\((?:.*/)?" + re.escape(ROOT) + r"/(src|benches|examples)/")
BARE = re.compile(r"\((src/[^():]+):\d+")


def ours(frame):
    if "/allocator.rs:" in frame:
        return False
    if OURS.search(frame):
        return True
    m = BARE.search(frame)
    return bool(m) and m.group(1) not in ("src/lib.rs", "src/main.rs") \
        and os.path.exists(os.path.join(REPO, m.group(1)))


def site(frames, ftbl):
    """The innermost frame in this crate's own files (the code that asked for the memory)."""
    names = [ftbl[i] for i in frames]
    for n in names:
        if ours(n):
            return short(n)
    # None of ours within dhat's backtrace depth: the innermost non-allocator frame.
    for n in names[1:]:
        if not re.search(r"\((alloc|core|std)/|raw_vec|alloc\.rs|\[root\]", n):
            return "(dependency) " + short(n)
    return short(names[-1]) if names else "?"


def short(frame):
    # "0x1234: m365_exporter::foo::bar (src/foo.rs:12:5)" -> "m365_exporter::foo::bar (src/foo.rs:12)"
    frame = frame.split(": ", 1)[-1]
    frame = re.sub(r"::h[0-9a-f]{16}", "", frame)
    frame = re.sub(r"(:\d+):\d+\)$", r"\1)", frame)
    return frame if len(frame) < 140 else frame[:137] + "..."


def load(path):
    d = json.load(open(path))
    ftbl = d["ftbl"]
    by = collections.Counter()
    blocks = collections.Counter()
    for pp in d["pps"]:
        s = site(pp["fs"], ftbl)
        by[s] += pp.get("gb", 0)
        blocks[s] += pp.get("gbk", 0)
    total = sum(by.values())
    return by, blocks, total, d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("one")
    ap.add_argument("many")
    ap.add_argument("n", type=int)
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args()
    one, oneb, tot1, _ = load(a.one)
    many, manyb, totn, _ = load(a.many)
    k = a.n - 1
    print(f"heap at the peak (t-gmax): 1 tenant {tot1 / 1024:.1f} KiB, {a.n} tenants "
          f"{totn / 1024:.1f} KiB; per tenant {(totn - tot1) / k / 1024:.2f} KiB")
    rows = sorted(((many[s] - one.get(s, 0), s) for s in many), reverse=True)
    print(f"{'B/tenant':>9} {'blocks/t':>8}  allocation site (innermost frame in this crate)")
    for d, s in rows[: a.top]:
        print(f"{d / k:>9.0f} {(manyb[s] - oneb.get(s, 0)) / k:>8.1f}  {s}")
    rest = sum(d for d, _ in rows[a.top:])
    print(f"{rest / k:>9.0f} {'':>8}  (all other sites)")


if __name__ == "__main__":
    main()
