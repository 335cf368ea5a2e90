"""Classify every image in a folder and write one CSV row per file.

Usage:
    python examples/predict_folder_to_csv.py examples/images -o predictions.csv
    python examples/predict_folder_to_csv.py photos/ --recursive --model acme/imgsent-lite0 --batch-size 64

The CSV has the columns of ``imgsent classify`` (path, label, confidence, negative, neutral,
positive, error), written by the same writer. Unreadable files get a row with ``error`` set instead of stopping the run.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from imgsent import Predictor
from imgsent.outputs import ResultWriter
from imgsent.scan import iter_image_files

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", default=str(HERE / "images"), help="folder of images (default: examples/images)")
    parser.add_argument("-o", "--output", default="predictions.csv", help="CSV file to write (default: predictions.csv)")
    parser.add_argument("--model", default=None, help="model name, folder or Hub repo id (default: the packaged model)")
    parser.add_argument("--recursive", action="store_true", help="descend into sub-folders")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: automatic)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    predictor = Predictor.from_pretrained(args.model, device=args.device)
    paths = iter_image_files([args.folder], recursive=args.recursive)  # a lazy generator
    counts: Counter[str] = Counter()
    with open(args.output, "w", newline="", encoding="utf-8") as handle:
        writer = ResultWriter(handle, "csv", write_header=True)  # the columns and format of `imgsent classify`
        for batch in predictor.iter_predict_batches(paths, batch_size=args.batch_size, workers=args.workers):
            writer.write(batch)  # one flush per batch: a crash loses at most the batch in flight
            counts.update(p.label if p.ok else "error" for p in batch)
    print(f"{sum(counts.values())} rows -> {args.output}: {dict(sorted(counts.items()))}", file=sys.stderr)
    return 3 if counts["error"] else 0  # the exit codes of `imgsent classify`


if __name__ == "__main__":
    raise SystemExit(main())
