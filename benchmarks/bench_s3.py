"""Requests and bytes per command against a real S3 API served locally (run by hand, not by pytest).

Usage: python benchmarks/bench_s3.py [--repo PATH] [--keep DIR]

Builds with TensorFlow (tf.raw_ops.SaveV2, the op every Saver runs), in a temporary folder:
  run120/  120 checkpoints of a small MLP (5 variables, ~400 KB each) and a `checkpoint` state file
  tree/    a deep tree: 16 runs of 2 checkpoints each, 2 to 5 folders down, beside 40 folders of
           other files (event files, 5 per folder), as a bucket of real training jobs holds
  linear/  the bundled sample run, with its .meta files (for `graph`)
uploads them to moto's S3 server (ThreadedMotoServer on 127.0.0.1) and runs each command as
`python -m ckptlib … --json` with s3fs pointed at a counting proxy in front of moto (tests/s3store.py).
Per command it prints the requests (LIST, HEAD, GET), the object bytes fetched, the listing bytes, the
bytes the command asked for (the files or tensors its answer is made of) and fetched / asked.
`--repo PATH` runs the commands from another checkout (to measure an older storage layer).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests")]
from s3store import S3Store  # noqa: E402

BUCKET = "ckptlib-bench"
SHAPES = {"dense1/kernel": (256, 256), "dense1/bias": (256,), "dense2/kernel": (256, 128), "dense2/bias": (128,),
          "global_step": ()}


def _save(tf, prefix: str, step: int, rng) -> None:
    names = sorted(SHAPES)
    values = [np.int64(step) if n == "global_step" else rng.standard_normal(SHAPES[n]).astype(np.float32)
              for n in names]
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(v) for v in values])


def _state_file(folder: str, steps: list[int], start: float) -> None:
    names = [f"model.ckpt-{s}" for s in steps]
    lines = [f'model_checkpoint_path: "{names[-1]}"'] + [f'all_model_checkpoint_paths: "{n}"' for n in names]
    lines += [f"all_model_checkpoint_timestamps: {start + i * 60.0}" for i in range(len(names))]
    with open(os.path.join(folder, "checkpoint"), "w") as handle:
        handle.write("\n".join(lines) + "\n")


def build(out: str) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    run = os.path.join(out, "run120")
    os.makedirs(run)
    steps = [100 * (i + 1) for i in range(120)]
    for step in steps:
        _save(tf, os.path.join(run, f"model.ckpt-{step}"), step, rng)
    _state_file(run, steps, 1.7e9)
    for i in range(16):
        folder = os.path.join(out, "tree", f"team{i % 4}", *[f"exp{i}"] + ["sweep"] * (i % 4), f"trial{i}")
        os.makedirs(folder)
        for step in (10, 20):
            _save(tf, os.path.join(folder, f"model.ckpt-{step}"), step, rng)
        _state_file(folder, [10, 20], 1.7e9)
    for i in range(40):
        folder = os.path.join(out, "tree", f"team{i % 4}", f"logs{i}", "train", "plugins", "profile")
        os.makedirs(folder)
        for k in range(5):
            with open(os.path.join(folder, f"events.out.tfevents.{k}"), "wb") as handle:
                handle.write(rng.bytes(2048))
    shutil.copytree(os.path.join(REPO, "sample_checkpoints", "linear"), os.path.join(out, "linear"))


def _size(*paths: str) -> int:
    return sum(os.path.getsize(p) for p in paths)


def commands(local: str, url: str) -> list[tuple[str, list[str], int]]:
    """(label, argv on the URL, bytes asked for: what the answer is made of)."""
    run = os.path.join(local, "run120")
    indexes = [os.path.join(run, n) for n in os.listdir(run) if n.endswith(".index")]
    last = os.path.join(run, "model.ckpt-12000")
    from ckptlib.formats import bundle

    kernel = bundle.read_index(last).entries["dense1/kernel"].size
    bias = bundle.read_index(last).entries["dense2/bias"].size
    shard = _size(last + ".data-00000-of-00001")
    tree_small = [os.path.join(f, n) for f, _, names in os.walk(os.path.join(local, "tree")) for n in names
                  if n.endswith(".index") or n == "checkpoint"]
    everything = sum(e.size for e in bundle.read_index(last).entries.values())
    walked = list(os.walk(os.path.join(local, "tree")))
    shape = f"{len(walked)} folders, {sum(len(names) for _, _, names in walked)} objects"
    return [
        (f"runs (deep tree: 16 runs, {shape})", ["runs", f"{url}/tree"], _size(*tree_small)),
        ("history (120 checkpoints)", ["history", f"{url}/run120"], _size(*indexes, os.path.join(run, "checkpoint"))),
        ("vars (one checkpoint)", ["vars", f"{url}/run120/model.ckpt-12000"], _size(last + ".index")),
        (f"show one 512 B tensor (its shard: {_human(shard)})",
         ["show", f"{url}/run120/model.ckpt-12000", "--var", "dense2/bias", "--no-cache"], _size(last + ".index") + bias),
        ("show one 256 KB tensor", ["show", f"{url}/run120/model.ckpt-12000", "--var", "dense1/kernel", "--no-cache"],
         _size(last + ".index") + kernel),
        ("show, the run folder (latest)", ["show", f"{url}/run120", "--var", "dense1/kernel", "--no-cache"],
         _size(*indexes, os.path.join(run, "checkpoint")) + kernel),
        ("diff of two checkpoints", ["diff", f"{url}/run120/model.ckpt-100", f"{url}/run120/model.ckpt-12000",
                                     "--no-cache"], 2 * (_size(last + ".index") + everything)),
        ("trend of one variable over 120", ["trend", f"{url}/run120", "--var", "dense1/kernel", "--no-cache"],
         _size(*indexes, os.path.join(run, "checkpoint")) + 120 * kernel),
        ("graph (a 19 KB .meta)", ["graph", f"{url}/linear/model.ckpt-500.meta"],
         _size(os.path.join(local, "linear", "model.ckpt-500.meta"))),
    ]


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=REPO, help="the checkout whose ckptlib runs the commands")
    parser.add_argument("--keep", help="build the runs here and keep them")
    args = parser.parse_args()
    out = args.keep or tempfile.mkdtemp(prefix="ckptlib-s3-bench-")
    try:
        if not os.path.exists(os.path.join(out, "run120")):
            build(out)
        with S3Store() as store:
            url = store.upload(out, BUCKET, "bench")
            env = store.env(PYTHONPATH=args.repo, CKPTLIB_CACHE=os.path.join(out, "cache.sqlite3"))
            print(f"ckptlib from {args.repo}; s3fs against moto's server via a counting proxy\n")
            print("| command | requests (LIST / HEAD / GET) | object bytes fetched | listing bytes | asked for | "
                  "fetched / asked | wall |")
            print("|---|---|---|---|---|---|---|")
            for label, argv, asked in commands(out, url):
                store.reset()
                start = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "ckptlib", *argv, "--json"], cwd=args.repo, env=env,
                                      capture_output=True, text=True, timeout=600)
                wall = time.perf_counter() - start
                c = store.summary()
                if done.returncode:
                    print(f"| {label} | {c['requests']} ({c['LIST']} / {c['HEAD']} / {c['GET']}) | failed: "
                          f"{done.stderr.strip()[:120]} | | | | |")
                    continue
                print(f"| {label} | {c['requests']} ({c['LIST']} / {c['HEAD']} / {c['GET']}) | "
                      f"{_human(c['object_bytes'])} | {_human(c['bytes'] - c['object_bytes'])} | {_human(asked)} | "
                      f"{c['object_bytes'] / asked:.2f} | {wall:.1f} s |")
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
