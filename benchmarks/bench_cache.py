"""The result cache from a fresh process against computing afresh (run by hand, not by pytest).

Usage: python benchmarks/bench_cache.py [--repeat N] [--keep DIR]

Builds, with TensorFlow (tf.raw_ops.SaveV2), two checkpoints of 40 float32 variables of 10 MB each
(~420 MB each; B = A + 1e-3 noise) in a temporary folder, then times fresh processes of
`python -m ckptlib diff A B --json --verify` (interpreter start and imports included, warm page cache):
  first      an empty cache: computes and stores (what the first dashboard or CLI call pays)
  hit        the same command again in a new process: answered from the cache
  no-cache   --no-cache: computes and neither reads nor writes the cache
and prints hit's speed-up over both (target: at least 3x) and whether the three documents are identical.
Each measurement runs --repeat times (median); `first` gets a fresh cache folder every time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_reader import REPO, machine  # a sibling script: one copy of the helper

BUILD = r"""
import sys, numpy as np, tensorflow as tf
out = sys.argv[1]
rng = np.random.default_rng(0)
names = [f"layer_{i:02d}/kernel" for i in range(40)]
a = [rng.standard_normal((2560, 1024), dtype=np.float32) for _ in names]
b = [x + np.float32(1e-3) * rng.standard_normal(x.shape, dtype=np.float32) for x in a]
for tag, values in (("a", a), ("b", b)):
    tf.raw_ops.SaveV2(prefix=f"{out}/{tag}", tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(v) for v in values])
"""


def timed(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR", help="build (or reuse) the checkpoints here and keep them")
    args = parser.parse_args()
    folder = args.keep or tempfile.mkdtemp(prefix="ckptlib-bench-cache-")
    caches = tempfile.mkdtemp(prefix="ckptlib-bench-caches-")
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    try:
        if not os.path.exists(os.path.join(folder, "b.index")):
            os.makedirs(folder, exist_ok=True)
            subprocess.run([sys.executable, "-c", BUILD, folder], env=env, check=True)
        a, b = os.path.join(folder, "a"), os.path.join(folder, "b")
        command = [sys.executable, "-m", "ckptlib", "diff", a, b, "--json", "--verify"]
        timed(command + ["--no-cache"], env)  # warms the page cache
        times: dict[str, list[float]] = {"first": [], "hit": [], "no-cache": []}
        documents = set()
        for run in range(args.repeat):
            cache_env = dict(env, CKPTLIB_CACHE=os.path.join(caches, f"cache{run}.sqlite3"))
            for label, extra in (("first", []), ("hit", []), ("no-cache", ["--no-cache"])):
                seconds, out = timed(command + extra, cache_env)
                times[label].append(seconds)
                documents.add(out)
        median = {label: statistics.median(values) for label, values in times.items()}
        nbytes = sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder) if ".data-" in n)
        print(f"{machine(env)}\ninput: {nbytes / 1e6:.0f} MB (both data files), {args.repeat} runs each, warm cache")
        for label, seconds in median.items():
            print(f"  {label:<9} {seconds:6.2f} s")
        for other in ("first", "no-cache"):
            ratio = median[other] / median["hit"]
            print(f"  hit vs {other:<9} {ratio:5.1f}x faster  (target >= 3x: {'PASS' if ratio >= 3 else 'FAIL'})")
        print(f"  identical documents: {'yes' if len(documents) == 1 else 'NO'}")
        return 0 if len(documents) == 1 else 1
    finally:
        shutil.rmtree(caches, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
