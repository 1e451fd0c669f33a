"""Side by side: ckptlib's native reader against tf.train.load_checkpoint + numpy (run by hand, not by pytest).

Usage: python benchmarks/bench_reader.py [--repeat N] [--keep DIR]

Builds, with TensorFlow, in a temporary folder (~1.8 GB, removed at the end):
  many_a / many_b  40 float32 variables of 10 MB each (~400 MB per checkpoint), B = A + small noise
  big_a / big_b    one float32 tensor of 512 MB each
and times, each side in a fresh process, its peak RSS read back from wait4() (the same ru_maxrss that
`/usr/bin/time -f %M` prints):
  (a) diff of the two ~400 MB checkpoints: ckptlib >= 3x faster, <= half the peak RSS of the baseline
  (b) diff of the two 512 MB checkpoints: ckptlib peak RSS <= 300 MB
  (c) `python -m ckptlib vars CKPT` from a cold process: <= 1/4 of `python -c "import tensorflow"`
and, for information, `python -m ckptlib show` (statistics and histogram, streamed) on the 512 MB tensor.
The page cache cannot be dropped here (no root on the host): every number is warm-cache, both sides
alike (the checkpoints are read once before timing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB = 1 << 20

# Writes the four checkpoints with tf.raw_ops.SaveV2 (TensorFlow's own bundle writer).
BUILD = r"""
import sys, numpy as np, tensorflow as tf
out = sys.argv[1]
rng = np.random.default_rng(0)
names = [f"layer_{i:02d}/kernel" for i in range(40)]
a = [rng.standard_normal((2560, 1024), dtype=np.float32) for _ in names]  # 10 MB each
b = [x + np.float32(1e-3) * rng.standard_normal(x.shape, dtype=np.float32) for x in a]
for tag, values in (("many_a", a), ("many_b", b)):
    tf.raw_ops.SaveV2(prefix=f"{out}/{tag}", tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(v) for v in values])
del a, b
big = rng.standard_normal((131072, 1024), dtype=np.float32)  # 512 MB
tf.raw_ops.SaveV2(prefix=f"{out}/big_a", tensor_names=["embedding"], shape_and_slices=[""], tensors=[tf.constant(big)])
big += np.float32(1e-3)
tf.raw_ops.SaveV2(prefix=f"{out}/big_b", tensor_names=["embedding"], shape_and_slices=[""], tensors=[tf.constant(big)])
"""

# The baseline: what one would write without ckptlib. Same statistics, accumulated in float64.
BASELINE = r"""
import json, sys, numpy as np, tensorflow as tf
ra, rb = tf.train.load_checkpoint(sys.argv[1]), tf.train.load_checkpoint(sys.argv[2])
rows = {}
for name in sorted(ra.get_variable_to_shape_map()):
    a = ra.get_tensor(name).astype(np.float64)
    b = rb.get_tensor(name).astype(np.float64)
    d = b - a
    na, nb, nd = np.linalg.norm(a), np.linalg.norm(b), np.linalg.norm(d)
    rows[name] = {"l2_diff": nd, "rel_change": nd / na, "max_abs_diff": np.abs(d).max(),
                  "mean_abs_diff": np.abs(d).mean(), "cosine": float(np.vdot(a, b)) / (na * nb),
                  "frac_changed": np.count_nonzero(d) / d.size}
print(json.dumps({k: {s: float(v) for s, v in r.items()} for k, r in rows.items()}))
"""


def run(args: list[str], env: dict[str, str], capture: bool = False) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MB, stdout) of one fresh process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out if capture else subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # reaps it: Popen.wait would lose the rusage
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if proc.returncode:
            sys.exit(f"failed ({proc.returncode}): {' '.join(args)}\n{err.read().decode()[-2000:]}")
        return wall, usage.ru_maxrss // 1024, out.read().decode()  # ru_maxrss is in KB on Linux


def measure(args: list[str], env: dict[str, str], repeat: int) -> tuple[float, int]:
    """Median wall time and largest peak RSS over `repeat` fresh processes."""
    runs = [run(args, env) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def check_agreement(folder: str, env: dict[str, str]) -> str:
    """ckptlib's diff and the baseline's numbers for the ~400 MB pair (sanity: the same work is timed)."""
    a, b = f"{folder}/many_a", f"{folder}/many_b"
    ours = json.loads(run([sys.executable, "-m", "ckptlib", "diff", a, b, "--json"], env, capture=True)[2])
    theirs = json.loads(run([sys.executable, "-c", BASELINE, a, b], env, capture=True)[2])
    worst = 0.0
    for row in ours["variables"]:
        for stat, want in theirs[row["name"]].items():
            worst = max(worst, abs(row[stat] - want) / max(abs(want), 1e-300))
    return f"largest relative difference between ckptlib and the baseline: {worst:.1e}"


def machine(env: dict[str, str]) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    ram = next((int(line.split()[1]) // 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    code = "import numpy, tensorflow as tf; print(numpy.__version__, tf.__version__)"
    versions = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.split()
    blas = os.environ.get("OPENBLAS_CORETYPE")
    return (f"{os.cpu_count()} cores ({cpu}), {ram} MB RAM, Python {platform.python_version()}, numpy {versions[0]}, "
            f"TensorFlow {versions[1]}, OPENBLAS_CORETYPE={blas or 'unset'}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per measurement (median time)")
    parser.add_argument("--keep", metavar="DIR", help="build into DIR and keep it (default: a temp dir, removed)")
    args = parser.parse_args()
    folder = args.keep or tempfile.mkdtemp(prefix="ckptlib-bench-")
    # Importing TensorFlow makes Keras write ~/.keras/keras.json: keep that inside the folder too.
    env = {"KERAS_HOME": os.path.join(folder, "keras_home"), **os.environ, "PYTHONPATH": REPO,
           "TF_CPP_MIN_LOG_LEVEL": "2"}  # fmt: skip
    py = sys.executable
    try:
        if not os.path.exists(f"{folder}/big_b.index"):
            print(f"building checkpoints in {folder} ...", flush=True)
            os.makedirs(folder, exist_ok=True)
            run([py, "-c", BUILD, folder], env)
        print(machine(env))
        print(check_agreement(folder, env))  # also warms the page cache for both sides
        many = [f"{folder}/many_a", f"{folder}/many_b"]
        big = [f"{folder}/big_a", f"{folder}/big_b"]
        ours_a = measure([py, "-m", "ckptlib", "diff", *many, "--json"], env, args.repeat)
        base_a = measure([py, "-c", BASELINE, *many], env, args.repeat)
        ours_b = measure([py, "-m", "ckptlib", "diff", *big, "--json"], env, args.repeat)
        base_b = measure([py, "-c", BASELINE, *big], env, 1)
        ours_d = measure([py, "-m", "ckptlib", "show", big[0], "--var", "embedding", "--json"], env, args.repeat)
        ours_c = measure([py, "-m", "ckptlib", "vars", many[0], "--json"], env, max(5, args.repeat))
        base_c = measure([py, "-c", "import tensorflow"], env, max(5, args.repeat))
        speed, rss = base_a[0] / ours_a[0], ours_a[1] / base_a[1]
        print(f"\n{'':44}{'ckptlib':>18}{'baseline':>18}  ratio / target")
        print(f"{'(a) diff 2 x 400 MB (40 vars), wall time':44}{ours_a[0]:>16.2f} s{base_a[0]:>16.2f} s"
              f"  {speed:.1f}x faster (>= 3x)  {verdict(speed >= 3)}")
        print(f"{'    peak RSS':44}{ours_a[1]:>15} MB{base_a[1]:>15} MB"
              f"  {rss:.2f} of baseline (<= 0.5)  {verdict(rss <= 0.5)}")
        print(f"{'(b) diff 2 x 512 MB (1 tensor), wall time':44}{ours_b[0]:>16.2f} s{base_b[0]:>16.2f} s"
              f"  {base_b[0] / ours_b[0]:.1f}x faster")
        print(f"{'    peak RSS':44}{ours_b[1]:>15} MB{base_b[1]:>15} MB  (<= 300 MB)  {verdict(ours_b[1] <= 300)}")
        print(f"{'    show (stats + histogram), one 512 MB':44}{ours_d[0]:>16.2f} s{'-':>18}  peak RSS {ours_d[1]} MB")
        cold = ours_c[0] / base_c[0]
        print(f"{'(c) vars, cold process vs import tensorflow':44}{ours_c[0]:>16.2f} s{base_c[0]:>16.2f} s"
              f"  {cold:.2f} of it (<= 0.25)  {verdict(cold <= 0.25)}")
        print(f"{'    peak RSS':44}{ours_c[1]:>15} MB{base_c[1]:>15} MB")
        print("\nwarm page cache; times are medians of fresh processes (interpreter start and imports included)")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
