"""Zero-shot evaluation on labelled benchmarks.

Two protocols:

* **binary** (the paper's): the neutral output is dropped and an image is called positive
  when p(positive) > p(negative). Neutral-labelled rows are skipped and counted.
* **3-class**: argmax over negative, neutral and positive; used when the label file has
  neutral rows *and* the model was trained on neutral examples
  (:func:`imgsent.config.trained_labels`).

Accepted label files:

* ``image,label[,agree]``: ``label`` is ``negative``/``neutral``/``positive``; ``agree`` (3, 4
  or 5) gives the Twitter I agreement subsets, nested (``agree >= k``);
* ``path,class``: the authors' benchmark CSVs, with 0 negative and 1 positive (2 neutral).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from imgsent.config import LABELS, trained_labels
from imgsent.errors import CorpusError, UnknownSubsetError
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
    """Metrics on one subset.

    Attributes:
        name: ``"all"`` or ``"agree>=K"``.
        n: Images scored (unreadable ones excluded; see ``EvaluationReport.errors``).
        accuracy: Fraction correct; ``None`` when ``n`` is 0 (nothing was measured).
        macro_f1: Mean of the per-class F1; ``None`` when ``n`` is 0.
        confusion: ``confusion[true][pred]`` counts over the protocol's classes.
    """

    name: str
    n: int
    accuracy: float | None
    macro_f1: float | None
    confusion: dict[str, dict[str, int]]


@dataclass
class EvaluationReport:
    """Metrics per subset, plus the files that could not be read.

    Attributes:
        labels_file: The label CSV.
        subsets: Metrics of ``all`` and of each agreement subset.
        errors: Why each unreadable image failed.
        protocol: ``"binary"`` (the paper's) or ``"3-class"``.
        skipped_neutral: Neutral-labelled rows left out by the binary protocol.

    Example:
        >>> report = evaluate_labels(Predictor.from_pretrained(), "twitter1-dev/labels.csv")  # doctest: +SKIP
        >>> [(m.name, m.n) for m in report.subsets]  # doctest: +SKIP
        [('all', 750), ('agree>=3', 750), ('agree>=4', 647), ('agree>=5', 501)]
    """

    labels_file: str
    subsets: list[SubsetMetrics] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    protocol: str = "binary"
    skipped_neutral: int = 0

    @property
    def classes(self) -> tuple[str, ...]:
        """The classes scored: negative and positive, or all three."""
        return LABELS if self.protocol == "3-class" else POLARITIES

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(dataclasses.asdict(self), indent=2)

    @property
    def scored(self) -> int:
        """Images scored in ``all``: 0 when no image could be read (every metric is then ``None``)."""
        return self.subsets[0].n if self.subsets else 0

    def accuracy(self, subset: str = "all") -> float | None:
        """Accuracy of a subset by name, e.g. ``"agree>=5"``; ``None`` when the subset scored no image.

        Raises:
            UnknownSubsetError: The report has no subset of that name; the message lists them.
        """
        for metrics in self.subsets:
            if metrics.name == subset:
                return metrics.accuracy
        raise UnknownSubsetError(f"No subset {subset!r}; valid names: {', '.join(m.name for m in self.subsets)}.")


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
            label = {"0": "negative", "1": "positive", "2": "neutral"}.get(code, code)
            agree = None
        else:
            raise CorpusError(
                f"{path}: expected columns image,label[,agree] or path,class; found {sorted(columns)}."
            )
        if label not in LABELS:
            raise CorpusError(
                f"{path}, line {number}: label must be negative, neutral or positive (or class 0, 1, 2), got {label!r}."
            )
        image_path = Path(image)
        if not image_path.is_absolute():
            image_path = root / image_path
            if not image_path.exists() and (root / "images" / image).exists():
                image_path = root / "images" / image
        out.append(LabelledImage(str(image_path), label, agree))
    return out


def evaluate_labels(
    predictor: Predictor,
    labels: str | os.PathLike[str],
    *,
    images_root: str | os.PathLike[str] | None = None,
    batch_size: int = 32,
    workers: int | None = None,
    tta: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvaluationReport:
    """Evaluate a predictor on a labelled CSV.

    The protocol is 3-class when the file has neutral rows and the model was trained on
    neutral examples; otherwise it is the paper's binary protocol on the non-neutral rows,
    and the neutral rows are counted in ``skipped_neutral``.

    Args:
        predictor: A loaded :class:`~imgsent.Predictor`.
        labels: The labels CSV.
        images_root: Folder the image paths are relative to (default: the CSV's folder, or its
            ``images/`` sub-folder when the files are there).
        batch_size: Images per forward pass.
        workers: Decoding processes.
        tta: Average over the image and its horizontal mirror.
        on_progress: Called after each batch with (images done, images to score).

    Returns:
        An :class:`EvaluationReport` with ``all`` and, when ``agree`` is present, the
        ``agree>=3``, ``agree>=4`` and ``agree>=5`` subsets.

    Example:
        >>> report = evaluate_labels(Predictor.from_pretrained(), "twitter1-dev/labels.csv")  # doctest: +SKIP
        >>> report.protocol, round(report.accuracy("agree>=5"), 3)  # doctest: +SKIP
        ('binary', 0.906)
    """
    rows = read_labels(labels, images_root=images_root)
    three_class = any(r.label == "neutral" for r in rows) and "neutral" in trained_labels(predictor.config)
    report = EvaluationReport(labels_file=str(labels), protocol="3-class" if three_class else "binary")
    if not three_class:
        report.skipped_neutral = sum(r.label == "neutral" for r in rows)
        rows = [r for r in rows if r.label != "neutral"]
    truths: list[str] = []
    preds: list[str] = []
    agrees: list[int | None] = []
    predictions = predictor.iter_predict(
        [r.path for r in rows], batch_size=batch_size, workers=workers, binary=not three_class, tta=tta
    )
    if on_progress is not None:
        on_progress(0, len(rows))
    for done, (row, prediction) in enumerate(zip(rows, predictions), start=1):
        if on_progress is not None and (done % batch_size == 0 or done == len(rows)):
            on_progress(done, len(rows))
        if not prediction.ok:
            report.errors.append(prediction.error or row.path)
            continue
        truths.append(row.label)
        preds.append(prediction.label or "")
        agrees.append(row.agree)
    classes = report.classes
    report.subsets.append(class_metrics("all", truths, preds, classes))
    if any(a is not None for a in agrees):
        for level in (3, 4, 5):
            keep = [i for i, a in enumerate(agrees) if a is not None and a >= level]
            report.subsets.append(class_metrics(f"agree>={level}", [truths[i] for i in keep], [preds[i] for i in keep], classes))
    return report


def class_metrics(name: str, truths: list[str], preds: list[str], classes: tuple[str, ...]) -> SubsetMetrics:
    """Accuracy, macro-F1 (mean per-class F1) and confusion matrix over ``classes``.

    With no rows, accuracy and macro-F1 are ``None``: nothing was measured, which is not 0 %.

    Example:
        >>> m = class_metrics("all", ["negative", "neutral", "positive"], ["negative", "positive", "positive"], LABELS)
        >>> m.accuracy, round(m.macro_f1, 3), m.confusion["neutral"]
        (0.6666666666666666, 0.556, {'negative': 0, 'neutral': 0, 'positive': 1})
        >>> class_metrics("agree>=5", [], [], LABELS).accuracy is None
        True
    """
    confusion = {t: {p: 0 for p in classes} for t in classes}
    for truth, pred in zip(truths, preds):
        confusion[truth][pred] += 1
    n = len(truths)
    correct = sum(confusion[c][c] for c in classes)
    f1s = []
    for cls in classes:
        tp = confusion[cls][cls]
        fp = sum(confusion[o][cls] for o in classes if o != cls)
        fn = sum(confusion[cls][o] for o in classes if o != cls)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    if not n:
        return SubsetMetrics(name, 0, None, None, confusion)
    return SubsetMetrics(name, n, correct / n, sum(f1s) / len(classes), confusion)
