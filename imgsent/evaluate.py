"""Zero-shot evaluation on labelled benchmarks with the paper's binary protocol.

The neutral output is dropped and an image is called positive when p(positive) > p(negative).
Accepted label files:

* ``image,label[,agree]``: ``label`` is ``positive``/``negative``; ``agree`` (3, 4 or 5) gives the
  Twitter I agreement subsets, nested (``agree >= k``);
* ``path,class``: the authors' benchmark CSVs, with 0 negative and 1 positive.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from imgsent.errors import CorpusError
from imgsent.predictor import Predictor

POLARITIES = ("negative", "positive")


@dataclass(frozen=True)
class LabelledImage:
    """One benchmark row: image path, human label, and agreement level (``None`` if unknown)."""

    path: str
    label: str
    agree: int | None = None


@dataclass
class SubsetMetrics:
    """Binary metrics on one subset.

    Attributes:
        name: ``"all"`` or ``"agree>=K"``.
        n: Images scored (unreadable ones excluded; see ``EvaluationReport.errors``).
        accuracy: Fraction correct.
        macro_f1: Mean of the F1 of negative and positive.
        confusion: ``confusion[true][pred]`` counts, keys ``negative`` and ``positive``.
    """

    name: str
    n: int
    accuracy: float
    macro_f1: float
    confusion: dict[str, dict[str, int]]


@dataclass
class EvaluationReport:
    """Metrics per subset, plus the files that could not be read.

    Example:
        >>> report = evaluate_labels(Predictor.from_pretrained(), "twitter1-dev/labels.csv")  # doctest: +SKIP
        >>> [(m.name, m.n) for m in report.subsets]  # doctest: +SKIP
        [('all', 750), ('agree>=3', 750), ('agree>=4', 647), ('agree>=5', 501)]
    """

    labels_file: str
    subsets: list[SubsetMetrics] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(dataclasses.asdict(self), indent=2)

    def accuracy(self, subset: str = "all") -> float:
        """Accuracy of a subset by name, e.g. ``"agree>=5"``."""
        for metrics in self.subsets:
            if metrics.name == subset:
                return metrics.accuracy
        raise KeyError(f"No subset {subset!r}; have {[m.name for m in self.subsets]}.")


def read_labels(path: str | os.PathLike[str], *, images_root: str | os.PathLike[str] | None = None) -> list[LabelledImage]:
    """Read a benchmark CSV in either accepted layout; image paths become absolute.

    Raises:
        CorpusError: The file is missing, has unknown columns, or a row has an invalid label.

    Example:
        >>> rows = read_labels("twitter1-dev/labels.csv")  # doctest: +SKIP
        >>> rows[0]  # doctest: +SKIP
        LabelledImage(path='twitter1-dev/images/100003032_428124307202400256_Be_S6KkCMAA411d.jpg', label='positive', agree=5)
    """
    path = Path(path)
    root = Path(images_root) if images_root is not None else path.parent
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise CorpusError(f"Cannot read labels file {path}: {exc.strerror or exc}") from None
    if not rows:
        raise CorpusError(f"{path} has no rows.")
    columns = set(rows[0])
    out: list[LabelledImage] = []
    for number, row in enumerate(rows, start=2):
        if {"image", "label"} <= columns:
            image, label = row["image"], (row["label"] or "").strip().lower()
            agree = int(row["agree"]) if row.get("agree") not in (None, "") else None
        elif {"path", "class"} <= columns:
            image, code = row["path"], (row["class"] or "").strip()
            label = {"0": "negative", "1": "positive"}.get(code, code)
            agree = None
        else:
            raise CorpusError(
                f"{path}: expected columns image,label[,agree] or path,class; found {sorted(columns)}."
            )
        if label not in POLARITIES:
            raise CorpusError(f"{path}, line {number}: label must be negative/positive (or class 0/1), got {label!r}.")
        image_path = Path(image)
        if not image_path.is_absolute():
            image_path = root / image_path
            if not image_path.exists() and (root / "images" / image).exists():
                image_path = root / "images" / image
        out.append(LabelledImage(str(image_path), label, agree))
    return out


def iter_scores(
    predictor: Predictor, paths: list[str], *, batch_size: int = 32, workers: int | None = None, tta: bool = False
) -> Iterator[tuple[str, torch.Tensor | None, str | None]]:
    """Yield ``(source, probabilities [3] or None, error)`` per path, in order; ``tta`` adds a mirrored view."""
    for batch in predictor.iter_batches(paths, batch_size=batch_size, workers=workers):
        probs = predictor.forward(batch)
        if tta and probs.shape[0]:
            mirrored = dataclasses.replace(batch, pixels=batch.pixels.flip(-1))
            probs = (probs + predictor.forward(mirrored)) / 2
        rows = iter(probs)
        for source, ok, error in zip(batch.sources, batch.ok, batch.errors):
            yield (source, next(rows), None) if ok else (source, None, error)


def evaluate_labels(
    predictor: Predictor,
    labels: str | os.PathLike[str],
    *,
    images_root: str | os.PathLike[str] | None = None,
    batch_size: int = 32,
    workers: int | None = None,
    tta: bool = False,
) -> EvaluationReport:
    """Evaluate a predictor on a labelled CSV with the binary protocol.

    Args:
        predictor: A loaded :class:`~imgsent.Predictor`.
        labels: The labels CSV.
        images_root: Folder the image paths are relative to (default: the CSV's folder, or its
            ``images/`` sub-folder when the files are there).
        batch_size: Images per forward pass.
        workers: Decoding processes.
        tta: Average over the image and its horizontal mirror.

    Returns:
        An :class:`EvaluationReport` with ``all`` and, when ``agree`` is present, the
        ``agree>=3``, ``agree>=4`` and ``agree>=5`` subsets.

    Example:
        >>> report = evaluate_labels(Predictor.from_pretrained(), "twitter1-dev/labels.csv")  # doctest: +SKIP
        >>> round(report.accuracy("agree>=5"), 3)  # doctest: +SKIP
        0.906
    """
    rows = read_labels(labels, images_root=images_root)
    report = EvaluationReport(labels_file=str(labels))
    truths: list[str] = []
    preds: list[str] = []
    agrees: list[int | None] = []
    for row, (_, probs, error) in zip(rows, iter_scores(predictor, [r.path for r in rows], batch_size=batch_size, workers=workers, tta=tta)):
        if probs is None:
            report.errors.append(error or row.path)
            continue
        truths.append(row.label)
        preds.append("positive" if probs[2] > probs[0] else "negative")
        agrees.append(row.agree)
    report.subsets.append(binary_metrics("all", truths, preds))
    if any(a is not None for a in agrees):
        for level in (3, 4, 5):
            keep = [i for i, a in enumerate(agrees) if a is not None and a >= level]
            report.subsets.append(binary_metrics(f"agree>={level}", [truths[i] for i in keep], [preds[i] for i in keep]))
    return report


def binary_metrics(name: str, truths: list[str], preds: list[str]) -> SubsetMetrics:
    """Accuracy, macro-F1 and confusion matrix for negative/positive labels."""
    confusion = {t: {p: 0 for p in POLARITIES} for t in POLARITIES}
    for truth, pred in zip(truths, preds):
        confusion[truth][pred] += 1
    n = len(truths)
    correct = sum(confusion[c][c] for c in POLARITIES)
    f1s = []
    for cls in POLARITIES:
        tp = confusion[cls][cls]
        fp = sum(confusion[o][cls] for o in POLARITIES if o != cls)
        fn = sum(confusion[cls][o] for o in POLARITIES if o != cls)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return SubsetMetrics(name, n, correct / n if n else 0.0, sum(f1s) / 2, confusion)
