"""Evaluate a model on a labelled CSV with the paper's binary protocol.

Usage:
    python examples/evaluate_labels.py ../shared/data/twitter1-dev/labels.csv
    python examples/evaluate_labels.py labels.csv --model runs/my-student/export/model --json metrics.json

The CSV has the columns ``image,label[,agree]`` (label positive/negative, agree 3-5) or
``path,class`` (0 negative, 1 positive). Image paths are relative to the CSV's folder unless
``--images-root`` says otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from imgsent import Predictor
from imgsent.evaluate import evaluate_labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labels", help="labels CSV")
    parser.add_argument("--model", default=None, help="model name, folder or Hub repo id (default: the packaged model)")
    parser.add_argument("--images-root", default=None, help="folder image paths are relative to (default: the CSV's folder)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--tta", action="store_true", help="average over the image and its mirror")
    parser.add_argument("--json", default=None, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)

    predictor = Predictor.from_pretrained(args.model, dtype="float32")  # exact, machine-independent metrics
    report = evaluate_labels(
        predictor, args.labels, images_root=args.images_root, batch_size=args.batch_size, workers=args.workers, tta=args.tta
    )
    print(f"{'subset':<10} {'n':>6} {'accuracy':>9} {'macro-F1':>9}")
    for subset in report.subsets:
        if subset.accuracy is None:  # no image of this subset could be read: nothing was measured
            print(f"{subset.name:<10} {subset.n:>6} {'n/a':>9} {'n/a':>9}")
        else:
            print(f"{subset.name:<10} {subset.n:>6} {subset.accuracy:>9.3f} {subset.macro_f1:>9.3f}")
    matrix = report.subsets[0].confusion
    print(f"confusion (true -> predicted): {matrix}")
    if report.errors:
        print(f"{len(report.errors)} images could not be read, e.g. {report.errors[0]}")
    if args.json:
        Path(args.json).write_text(report.to_json() + "\n", encoding="utf-8")
    return 0 if report.scored else 1  # nothing measured is a failure, not 0 %


if __name__ == "__main__":
    raise SystemExit(main())
