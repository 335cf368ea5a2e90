"""K-fold cross-validation of a distillation recipe on a captioned, labelled image set.

For each fold, the recipe is distilled from the *other* folds' corpus rows only (the
teacher reads their captions; no human label is read), then the exported model is
evaluated with ``imgsent evaluate``'s binary protocol on the held-out fold's images
against the human labels. Folds are a seeded shuffle of corpus rows, never stratified by
label, so nothing label-derived leaks into training.

Usage (reproduces the default model's table in docs/models.md)::

    python recipes/crossval.py recipes/default.yaml \
        --corpus ../shared/data/twitter1-dev/corpus.jsonl \
        --labels ../shared/data/twitter1-dev/labels.csv --folds 5 --workdir runs/cv-default
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
from pathlib import Path

from imgsent.distill.pipeline import DistillRun
from imgsent.distill.recipe import load_recipe
from imgsent.evaluate import evaluate_labels
from imgsent.predictor import Predictor

SUBSETS = ("agree>=5", "agree>=4", "agree>=3")


def split_rows(corpus: Path, folds: int, seed: int) -> list[list[dict]]:
    """Read the corpus rows (split on "\\n" only) and deal a seeded shuffle into ``folds`` parts."""
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").split("\n") if line.strip()]
    random.Random(seed).shuffle(rows)
    return [rows[i::folds] for i in range(folds)]


def write_fold(workdir: Path, corpus: Path, labels: Path, train_rows: list[dict], test_rows: list[dict]) -> tuple[Path, Path]:
    """Write the training corpus (absolute image paths) and the held-out labels CSV of one fold."""
    workdir.mkdir(parents=True, exist_ok=True)
    root = corpus.parent.resolve()
    fold_corpus = workdir / "corpus.jsonl"
    with open(fold_corpus, "w", encoding="utf-8") as handle:
        for row in train_rows:
            handle.write(json.dumps({**row, "images": [str(root / i) for i in row["images"]]}, ensure_ascii=False) + "\n")
    test_images = {Path(i).name for row in test_rows for i in row["images"]}
    fold_labels = workdir / "labels.csv"
    with open(labels, newline="", encoding="utf-8") as src, open(fold_labels, "w", newline="", encoding="utf-8") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        for row in reader:
            if Path(row["image"]).name in test_images:
                writer.writerow({**row, "image": str((labels.parent / "images" / Path(row["image"]).name).resolve())})
    return fold_corpus, fold_labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True, help="human labels, read for evaluation only")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("runs/cv"))
    parser.add_argument("--tta", action="store_true", help="evaluate with a mirrored view as well")
    parser.add_argument("--set", action="append", default=[], help="recipe override KEY=VALUE (YAML value)")
    parser.add_argument("--out", type=Path, help="also write the results JSON here (e.g. recipes/default.crossval.json)")
    args = parser.parse_args(argv)

    import yaml

    overrides = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.set)}
    parts = split_rows(args.corpus, args.folds, args.seed)
    per_fold: list[dict[str, float]] = []
    started = time.perf_counter()
    for k in range(args.folds):
        fold_dir = args.workdir / f"fold{k}"
        train_rows = [row for j, part in enumerate(parts) if j != k for row in part]
        fold_corpus, fold_labels = write_fold(fold_dir, args.corpus, args.labels, train_rows, parts[k])
        recipe = load_recipe(args.recipe, overrides={
            **overrides,
            "corpus.path": str(fold_corpus.resolve()),
            "corpus.image_root": str(args.corpus.parent.resolve()),
            "evaluate.labels": None,
            "export.push_to_hub": None,
            "export.metrics": None,
        })
        results = DistillRun(recipe, fold_dir / "run", log=lambda line: print(f"[fold {k}] {line}", file=sys.stderr)).run()
        predictor = Predictor.from_pretrained(results[-1].summary["model_dir"], dtype="float32")
        report = evaluate_labels(predictor, fold_labels, tta=args.tta)
        scores = {name: report.accuracy(name) for name in SUBSETS}
        per_fold.append(scores)
        print(f"fold {k}: " + " / ".join(f"{100 * scores[s]:.1f}" for s in SUBSETS), file=sys.stderr)
    summary = {
        s: {"mean": statistics.mean(f[s] for f in per_fold), "std": statistics.stdev(f[s] for f in per_fold) if len(per_fold) > 1 else 0.0}
        for s in SUBSETS
    }
    out = {"recipe": str(args.recipe), "dataset": args.corpus.parent.name, "folds": args.folds, "seed": args.seed, "tta": args.tta, "overrides": overrides,
           "per_fold": per_fold, "summary": summary, "seconds": round(time.perf_counter() - started, 1)}
    for path in filter(None, [args.workdir / "crossval.json", args.out]):
        path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out["summary"], indent=2))
    print("5 / 4 / 3-agree: " + " / ".join(
        f"{100 * summary[s]['mean']:.1f} ± {100 * summary[s]['std']:.1f}" for s in SUBSETS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
