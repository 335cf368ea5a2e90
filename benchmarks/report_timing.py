"""Time ``imgsent report`` on a real classify run and on a synthetic 100,000-row result.

    python benchmarks/report_timing.py RESULTS.csv [--rows 100000]

RESULTS.csv is ``imgsent classify ../shared/data/twitter1-dev/images -o RESULTS.csv``. The synthetic
result cycles through the same image paths with random labels and confidences, so its report
is sampled (``max_per_label`` thumbnails per label). The baseline is the same report made by one
thumbnail thread. Writes benchmarks/results/report.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import tempfile
import time
from pathlib import Path

from imgsent.report import write_report


def synthetic(source: Path, rows: int, out: Path) -> None:
    """A classify-style CSV of ``rows`` rows over the images of ``source``, 1 % error rows."""
    paths = [r["path"] for r in csv.DictReader(source.open())]
    rng = random.Random(0)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "confidence", "negative", "neutral", "positive", "error"])
        for i in range(rows):
            path = paths[i % len(paths)]
            if rng.random() < 0.01:
                writer.writerow([path, "", "", "", "", "", "decode error (synthetic)"])
                continue
            probs = [rng.random() for _ in range(3)]
            total = sum(probs)
            probs = [p / total for p in probs]
            top = max(range(3), key=probs.__getitem__)
            writer.writerow([path, ("negative", "neutral", "positive")[top], round(probs[top], 6), *(round(p, 6) for p in probs), ""])


def timed(results: Path, **kwargs: object) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        summary = write_report(results, Path(tmp) / "r.html", **kwargs)  # type: ignore[arg-type]
    return {"rows": summary.rows, "thumbnails": summary.shown, "errors": summary.errors,
            "megabytes": round(summary.bytes / 1e6, 2), "seconds": round(summary.seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    out: dict[str, object] = {"cpu_cores": len(os.sched_getaffinity(0))}
    out["twitter1_dev"] = timed(args.results, model="default")
    out["twitter1_dev_one_thread"] = timed(args.results, model="default", workers=1)
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.csv"
        start = time.perf_counter()
        synthetic(args.results, args.rows, big)
        out["synthetic_write_seconds"] = round(time.perf_counter() - start, 2)
        out[f"synthetic_{args.rows}"] = timed(big)
    print(json.dumps(out, indent=1))
    target = Path(__file__).parent / "results" / "report.json"
    target.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
