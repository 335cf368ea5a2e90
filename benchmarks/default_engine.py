"""The README's main command with the default engine against ``--backend torch``, alternating, on real photos.

Copies ``--images`` photos from ``--source`` into a temporary folder, runs
``imgsent classify FOLDER -o OUT.csv`` once per engine untimed (so the engine cache holds the
export, as on any run after the first), then ``--rounds`` timed rounds alternating the default
engine and ``--backend torch``, and compares their labels and probabilities::

    python -m benchmarks.default_engine --images 200 --rounds 3

Prints one JSON record and writes it to ``benchmarks/results/default_engine.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, SHARED_DATA, load_average, machine_info, write_json

ENGINES = {"default": [], "torch": ["--backend", "torch"]}


def _run(folder: Path, output: Path, extra: list[str]) -> tuple[float, str]:
    """Wall seconds of one ``imgsent classify`` process (start-up included) and its header line."""
    command = [sys.executable, "-m", "imgsent", "classify", str(folder), "-o", str(output), "--no-progress", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done.stderr.splitlines()[0]


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["path"]: row for row in csv.DictReader(fh)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.default_engine")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", type=Path, default=SHARED_DATA / "twitter1-dev" / "images")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "default_engine.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="imgsent-default-engine-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for photo in sorted(args.source.glob("*.jpg"))[: args.images]:
            shutil.copy(photo, folder / photo.name)
        outputs = {name: Path(tmp) / f"{name}.csv" for name in ENGINES}
        headers = {name: _run(folder, outputs[name], extra)[1] for name, extra in ENGINES.items()}  # warm-up
        seconds: dict[str, list[float]] = {name: [] for name in ENGINES}
        for _ in range(args.rounds):
            for name, extra in ENGINES.items():
                seconds[name].append(_run(folder, outputs[name], extra)[0])
        fast, slow = _rows(outputs["default"]), _rows(outputs["torch"])
        ok = [p for p in fast if not fast[p]["error"] and not slow[p]["error"]]
        max_dp = max((abs(float(fast[p][c]) - float(slow[p][c])) for p in ok for c in ("negative", "neutral", "positive")),
                     default=0.0)
        images = len(fast)
    record: dict[str, Any] = {
        "command": "imgsent classify FOLDER -o OUT.csv [--backend torch]",
        "images": images,
        "rounds": args.rounds,
        "headers": headers,
        "seconds": seconds,
        "images_per_second": {name: round(images / statistics.median(s), 1) for name, s in seconds.items()},
        "speedup": round(statistics.median(seconds["torch"]) / statistics.median(seconds["default"]), 2),
        "labels_equal": sum(fast[p]["label"] == slow[p]["label"] for p in ok),
        "compared": len(ok),
        "max_abs_probability_difference": max_dp,
        "load_average": load_average(),
        "machine": machine_info(),
    }
    print(json.dumps(record, indent=2))
    write_json(args.output, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
