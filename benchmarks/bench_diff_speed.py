"""Throughput of the full-read diff against a plain numpy loop and TensorFlow's reader (run by hand, not by pytest).

Usage: python benchmarks/bench_diff_speed.py [--repeat N] [--keep DIR] [--cpu N]

Builds, with TensorFlow (tf.raw_ops.SaveV2), in a temporary folder (~1.7 GB, removed at the end):
  a / b   40 float32 variables of 10 MB each (2560 x 1024, ~420 MB per checkpoint); B = A + 1e-3 noise,
          so every tensor differs
  one     A with one tensor replaced by B's: what the checksum shortcut is for
  run/    6 checkpoints of 20 float32 variables of 4 MB, 4 of every 5 moving at each step (trends)
and measures, warm cache, every measurement `--repeat` times, interleaved, medians:
  (a) numpy: one loop over both data files (np.fromfile at each tensor's offset, taken from the index),
      8192-element float64 blocks, sum (b-a)^2, sum a^2, sum b^2, a.b, max |b-a|, count changed; in
      this process, and as a script in a fresh process (to set beside the command line)
  (b) ckptlib: diff_checkpoints(A, B, verify=True) in this process, and `python -m ckptlib diff A B
      --json --verify --no-cache` in a fresh process (interpreter start and imports included)
  (c) TensorFlow: tf.train.load_checkpoint + get_tensor (crc32c-checked too), then the same numpy loop,
      in a process of its own (its import excluded: the second pass is timed)
  (d) the checksum shortcut: diff A vs `one` without --verify, and with it
  (e) trends over run/: one process, two (forked), and the default (as many as the idle CPUs allow)
GB/s are of input: the bytes of both data files. Every side of (a) to (d) is single-threaded (one core
at a time; --cpu N pins them all to CPU N); (e) uses every CPU. Each time is given as wall time and as
CPU time (user + system, of the process itself or, for a fresh one, from wait4()): on a machine shared
with other work, CPU time is the steadier of the two.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_reader import REPO, machine  # a sibling script: one copy of the helper

sys.path.insert(0, REPO)
import numpy as np

from ckptlib.compare.diff import diff_checkpoints
from ckptlib.compare.trends import run_trends
from ckptlib.formats import open_checkpoint
from ckptlib.formats.bundle import read_index
from ckptlib.runs.history import load_history

BUILD = r"""
import sys, numpy as np, tensorflow as tf
out = sys.argv[1]
rng = np.random.default_rng(0)
def save(prefix, names, values):
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(v) for v in values])
names = [f"layer_{i:02d}/kernel" for i in range(40)]
a = [rng.standard_normal((2560, 1024), dtype=np.float32) for _ in names]
b = [x + np.float32(1e-3) * rng.standard_normal(x.shape, dtype=np.float32) for x in a]
save(f"{out}/a", names, a)
save(f"{out}/b", names, b)
save(f"{out}/one", names, a[:17] + [b[17]] + a[18:])
del a, b
names = [f"dense_{i:02d}/kernel" for i in range(20)]
values = [rng.standard_normal((1024, 1024), dtype=np.float32) for _ in names]
for step in range(1, 7):
    if step > 1:
        values = [v if i % 5 == 0 else v + np.float32(1e-3) * rng.standard_normal(v.shape, dtype=np.float32)
                  for i, v in enumerate(values)]
    save(f"{out}/run/model.ckpt-{step}", names, values)
"""

# (a) as a script: the same loop as numpy_loop below, for a fresh process's wall time.
LOOP = r"""
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
from ckptlib.formats.bundle import read_index
ia, ib = read_index(sys.argv[2]), read_index(sys.argv[3])
for name in sorted(ia.entries):
    ea, eb = ia.entries[name], ib.entries[name]
    xa = np.fromfile(ia.data_path(ea.shard_id), dtype=np.float32, count=ea.size // 4, offset=ea.offset)
    xb = np.fromfile(ib.data_path(eb.shard_id), dtype=np.float32, count=eb.size // 4, offset=eb.offset)
    sd2 = sa2 = sb2 = sab = peak = 0.0
    changed = 0
    for s in range(0, xa.size, 8192):
        a, b = xa[s : s + 8192].astype(np.float64), xb[s : s + 8192].astype(np.float64)
        d = b - a
        sd2 += float(np.dot(d, d)); sa2 += float(np.dot(a, a))
        sb2 += float(np.dot(b, b)); sab += float(np.dot(a, b))
        peak = max(peak, float(np.abs(d).max())); changed += int(np.count_nonzero(d))
"""

# (c): TensorFlow's reader, then the same loop; prints the seconds of its second pass and the sums.
TF_LOOP = r"""
import json, sys, time, numpy as np, tensorflow as tf
def once():
    ra, rb = tf.train.load_checkpoint(sys.argv[1]), tf.train.load_checkpoint(sys.argv[2])
    sums = {}
    for name in sorted(ra.get_variable_to_shape_map()):
        xa, xb = ra.get_tensor(name).reshape(-1), rb.get_tensor(name).reshape(-1)
        sd2 = sa2 = sb2 = sab = peak = 0.0
        changed = 0
        for s in range(0, xa.size, 8192):
            a, b = xa[s : s + 8192].astype(np.float64), xb[s : s + 8192].astype(np.float64)
            d = b - a
            sd2 += float(np.dot(d, d)); sa2 += float(np.dot(a, a))
            sb2 += float(np.dot(b, b)); sab += float(np.dot(a, b))
            peak = max(peak, float(np.abs(d).max())); changed += int(np.count_nonzero(d))
        sums[name] = (sd2, sa2, sb2, sab, peak, changed, xa.size)
    return sums
once()
wall, cpu = time.perf_counter(), time.process_time()
sums = once()
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "sums": sums}))
"""


def numpy_loop(a: str, b: str, indexes: dict) -> dict[str, tuple]:
    """(a): the sums per tensor, 8192 float64 elements at a time (the offsets come from `indexes`, untimed)."""
    ia, ib = indexes[a], indexes[b]
    sums = {}
    for name in sorted(ia.entries):
        ea, eb = ia.entries[name], ib.entries[name]
        xa = np.fromfile(ia.data_path(ea.shard_id), dtype=np.float32, count=ea.size // 4, offset=ea.offset)
        xb = np.fromfile(ib.data_path(eb.shard_id), dtype=np.float32, count=eb.size // 4, offset=eb.offset)
        sd2 = sa2 = sb2 = sab = peak = 0.0
        changed = 0
        for s in range(0, xa.size, 8192):
            x, y = xa[s : s + 8192].astype(np.float64), xb[s : s + 8192].astype(np.float64)
            d = y - x
            sd2 += float(np.dot(d, d))
            sa2 += float(np.dot(x, x))
            sb2 += float(np.dot(y, y))
            sab += float(np.dot(x, y))
            peak = max(peak, float(np.abs(d).max()))
            changed += int(np.count_nonzero(d))
        sums[name] = (sd2, sa2, sb2, sab, peak, changed, xa.size)
    return sums


def ours(a: str, b: str, verify: bool = True):
    return diff_checkpoints(open_checkpoint(a), open_checkpoint(b), verify=verify)


def timed(fn, *args) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def spawn(args: list[str], env: dict[str, str], capture: bool = False) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds from wait4(), stdout) of one fresh process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out if capture else subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # reaps it: Popen.wait would lose the rusage
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if proc.returncode:
            sys.exit(f"failed ({proc.returncode}): {' '.join(args)}\n{err.read().decode()[-2000:]}")
        return wall, usage.ru_utime + usage.ru_stime, out.read().decode()


def worst_difference(diff, sums: dict[str, tuple]) -> float:
    """Largest relative difference between ckptlib's numbers and those from a loop's sums."""
    worst = 0.0
    for row in diff.variables:
        sd2, sa2, sb2, sab, peak, changed, size = sums[row.name]
        want = {"l2_diff": sd2**0.5, "rel_change": (sd2 / sa2) ** 0.5, "max_abs_diff": peak,
                "cosine": sab / (sa2 * sb2) ** 0.5, "frac_changed": changed / size}  # fmt: skip
        for stat, value in want.items():
            worst = max(worst, abs(getattr(row, stat) - value) / max(abs(value), 1e-300))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of every measurement (median time)")
    parser.add_argument("--keep", metavar="DIR", help="build into DIR and keep it (default: a temp dir, removed)")
    parser.add_argument("--cpu", type=int, help="pin (a) to (d) to this CPU (default: not pinned)")
    args = parser.parse_args()
    folder = args.keep or tempfile.mkdtemp(prefix="ckptlib-diffspeed-")
    env = {"KERAS_HOME": os.path.join(folder, "keras_home"), **os.environ, "PYTHONPATH": REPO,
           "TF_CPP_MIN_LOG_LEVEL": "2"}  # fmt: skip
    py, everywhere = sys.executable, os.sched_getaffinity(0)
    try:
        if not os.path.exists(f"{folder}/run/model.ckpt-6.index"):
            print(f"building checkpoints in {folder} ...", flush=True)
            os.makedirs(f"{folder}/run", exist_ok=True)
            spawn([py, "-c", BUILD, folder], env)
        print(machine(env))
        a, b, one = f"{folder}/a", f"{folder}/b", f"{folder}/one"
        indexes = {p: read_index(p) for p in (a, b, one)}
        nbytes = sum(os.path.getsize(indexes[p].data_path(0)) for p in (a, b))
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})  # the processes started below inherit it
        where = f"pinned to CPU {args.cpu}" if args.cpu is not None else "each side single-threaded"
        print(f"input: {nbytes / 1e6:.0f} MB (both data files), {args.repeat} runs each, {where}, warm cache")
        agree = [worst_difference(ours(a, b), numpy_loop(a, b, indexes))]  # also warms the page cache
        cli = [py, "-m", "ckptlib", "diff", a, b, "--json", "--verify", "--no-cache"]
        got: dict[str, list[tuple[float, float]]] = {key: [] for key in ("numpy", "script", "ours", "cli", "tf")}
        for _ in range(args.repeat):  # interleaved: a change in the machine's load hits every side alike
            got["numpy"].append(timed(numpy_loop, a, b, indexes)[:2])
            got["ours"].append(timed(ours, a, b)[:2])
            got["cli"].append(spawn(cli, env)[:2])
            got["script"].append(spawn([py, "-c", LOOP, REPO, a, b], env)[:2])
            tf = json.loads(spawn([py, "-c", TF_LOOP, a, b], env, capture=True)[2])
            got["tf"].append((tf["wall"], tf["cpu"]))
        agree.append(worst_difference(ours(a, b), tf["sums"]))
        skip: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeat):
            for verify in (False, True):
                skip[verify].append(timed(ours, a, one, verify)[0])
        os.sched_setaffinity(0, everywhere)
        history = load_history(f"{folder}/run")
        # A ckptlib from before `workers` existed runs one process every time (for before/after runs).
        parallel = "workers" in inspect.signature(run_trends).parameters
        trend: dict[int | None, list[float]] = {1: [], 2: [], None: []}
        results, loads = {}, []
        for _ in range(args.repeat):
            for workers, seconds in trend.items():
                kwargs = {"workers": workers} if parallel else {}
                loads.append(os.getloadavg()[0])
                took, _, results[workers] = timed(functools.partial(run_trends, history, verify=True, **kwargs))
                seconds.append(took)
        report(got, nbytes, agree)
        s0, s1 = statistics.median(skip[False]), statistics.median(skip[True])
        print(f"\n(d) A vs A-but-one-tensor, in-process: {s0:.3f} s trusting equal checksums, {s1:.3f} s with "
              f"--verify ({s1 / s0:.0f}x)")
        t1, t2, tn = (statistics.median(trend[workers]) for workers in (1, 2, None))
        same = results[1] == results[2] == results[None]
        print(f"(e) trends, 6 checkpoints x 20 x 4 MB, --verify: {t1:.3f} s in one process, {t2:.3f} s in two "
              f"({t1 / t2:.2f}x), {tn:.3f} s by default ({t1 / tn:.2f}x; load average {statistics.median(loads):.1f} "
              f"on {len(everywhere)} CPUs); identical results: {same}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def report(got: dict[str, list[tuple[float, float]]], nbytes: int, agree: list[float]) -> None:
    wall = {key: statistics.median(w for w, _ in runs) for key, runs in got.items()}
    cpu = {key: statistics.median(c for _, c in runs) for key, runs in got.items()}
    print(f"largest relative difference of ckptlib's numbers from the numpy loop's: {agree[0]:.1e}, "
          f"from TensorFlow's reader + numpy's: {agree[1]:.1e}")
    print(f"\n{'':58}{'wall':>9}{'GB/s':>7}{'CPU':>9}{'GB/s':>7}   time / ckptlib's (wall, CPU)")
    rows = [("(a) numpy loop, 8192-element float64 blocks, in-process", "numpy"),
            ("    the same loop as a script (fresh process)", "script"),
            ("(b) ckptlib diff_checkpoints(verify=True), in-process", "ours"),
            ("    python -m ckptlib diff --json --verify --no-cache", "cli"),
            ("(c) TensorFlow's reader + the numpy loop (import excluded)", "tf")]
    for label, key in rows:
        print(f"{label:58}{wall[key]:>7.3f} s{nbytes / wall[key] / 1e9:>7.2f}{cpu[key]:>7.3f} s"
              f"{nbytes / cpu[key] / 1e9:>7.2f}   {wall[key] / wall['ours']:.2f}  {cpu[key] / cpu['ours']:.2f}")
    ratio, ratio_cpu = wall["numpy"] / wall["ours"], cpu["numpy"] / cpu["ours"]
    runs = ", ".join(f"{n[0] / o[0]:.2f}" for n, o in zip(got["numpy"], got["ours"]))
    print(f"\nours / numpy loop (throughput, single-threaded both): {ratio:.2f} wall, {ratio_cpu:.2f} CPU "
          f"(>= 1.0: {'PASS' if ratio >= 1 else 'FAIL'}); each run, wall: {runs}")
    print(f"ours / TensorFlow's reader + numpy: {wall['tf'] / wall['ours']:.2f} wall, "
          f"{cpu['tf'] / cpu['ours']:.2f} CPU")
    print(f"command line / numpy script, fresh processes both: {wall['script'] / wall['cli']:.2f} wall, "
          f"{cpu['script'] / cpu['cli']:.2f} CPU")


if __name__ == "__main__":
    sys.exit(main())
