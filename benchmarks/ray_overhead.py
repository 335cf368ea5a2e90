"""Overhead of the Ray Data path against ``imgsent classify`` on the same images, in one run.

Run: ``python -m benchmarks.ray_overhead --images 200`` (a few minutes on 2 cores).

Images: the first ``--images`` twitter1-dev photos under ``../shared/data`` when present, else
generated 1024x768 JPEGs. Both sides use the default model, float32, on the CPU, and are timed
end to end from a fresh process:

* ``imgsent classify DIR -o out.csv --dtype float32`` in a child process;
* a child Python process that starts a local cluster (``ray.init(num_cpus=N)``), runs
  ``imgsent.integrations.ray.classify`` with one single-CPU actor per core and writes the rows
  to a CSV. Its time is also split: cluster start, and the dataset run alone.

The ratio is Ray's wall time over classify's (above 1: Ray is slower). Rows are compared too.
Results go to ``benchmarks/results/ray_overhead.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, SHARED_DATA, cores, load_average

RAY_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import ray
ray.init(num_cpus={cores}, include_dashboard=False, log_to_driver=False, configure_logging=False)
t1 = time.perf_counter()
from imgsent.integrations.ray import classify
paths = ray.data.from_items([{{"path": p}} for p in json.load(open({listing!r}))])
rows = classify(paths, dtype="float32", device="cpu", batch_size=32, concurrency={cores}).take_all()
t2 = time.perf_counter()
import csv
with open({out!r}, "w", newline="") as fh:
    w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
t3 = time.perf_counter()
ray.shutdown()
print(json.dumps({{"start": t1 - t0, "run": t2 - t1, "write": t3 - t2}}))
"""


def images(n: int, work: Path) -> Path:
    """A folder with ``n`` images: twitter1-dev photos when present, else generated JPEGs."""
    folder = work / "images"
    folder.mkdir()
    source = SHARED_DATA / "twitter1-dev" / "images"
    if source.is_dir():
        for path in sorted(source.glob("*.jpg"))[:n]:
            (folder / path.name).symlink_to(path)
        return folder
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8)).save(folder / f"{i:04d}.jpg", quality=90)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ray_overhead.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imgsent-ray-bench-"))
    try:
        folder = images(args.images, work)
        load = load_average()[0]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "imgsent", "classify", str(folder), "-o", str(work / "cli.csv"),
                        "--dtype", "float32", "--device", "cpu", "--no-progress"], check=False, cwd=REPO)
        cli_seconds = time.perf_counter() - start
        with open(work / "cli.csv", newline="") as fh:
            cli = {row["path"]: row for row in csv.DictReader(fh)}
        listing = work / "listing.json"
        listing.write_text(json.dumps(sorted(cli)))
        script = RAY_CHILD.format(cores=cores(), listing=str(listing), out=str(work / "ray.csv"))
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, cwd=REPO)
        ray_seconds = time.perf_counter() - start
        parts = json.loads(done.stdout.strip().splitlines()[-1])
        with open(work / "ray.csv", newline="") as fh:
            ray_rows = {row["path"]: row for row in csv.DictReader(fh)}
        gap = max(
            abs(float(ray_rows[p][k]) - float(cli[p][k]))
            for p in cli if cli[p]["label"] for k in ("negative", "neutral", "positive")
        )
        result = {
            "images": len(cli), "cores": cores(), "load_average_1min": load,
            "classify_seconds": cli_seconds, "ray_seconds": ray_seconds,
            "ratio_ray_over_classify": ray_seconds / cli_seconds,
            "ray_cluster_start_seconds": parts["start"], "ray_dataset_run_seconds": parts["run"],
            "ratio_ray_run_only_over_classify": parts["run"] / cli_seconds,
            "same_paths": sorted(ray_rows) == sorted(cli),
            "same_labels": all(ray_rows[p]["label"] == cli[p]["label"] for p in cli),
            "max_probability_gap": gap,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
