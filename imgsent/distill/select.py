"""Turn teacher outputs into a training set: confident posts, optional balancing, a split, class weights.

As in the paper, a post is kept when the teacher's top class passes that class's
confidence threshold (default 0.90 positive, 0.90 neutral, 0.70 negative); its hard
label (argmax) applies to every image of the post, and the teacher's probabilities are
kept as soft targets. Splitting and balancing work on posts, so images of one post never
land in both train and val. Everything seeded is deterministic and independent of input
order (posts are sorted by id before shuffling).

Output of :func:`write_selection` (a folder)::

    train.jsonl, val.jsonl  one row per image:
        {"image": "/abs/img.jpg", "post_id": "123", "label": "positive", "label_id": 2,
         "probs": [0.01, 0.04, 0.95]}
    selection.json          {"thresholds", "balance", "val_fraction", "seed", "class_weights",
                             "counts": {...}, "teacher": {...}}
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from imgsent.config import LABELS
from imgsent.distill.labels import LabeledPost
from imgsent.errors import InvalidConfigError

Split = Literal["train", "val"]


@dataclass(frozen=True)
class Thresholds:
    """Minimum teacher confidence, per predicted class, for a post to be kept.

    Defaults are the paper's best setting (0.70 negative, 0.90 neutral, 0.90 positive).
    """

    negative: float = 0.7
    neutral: float = 0.9
    positive: float = 0.9

    def __post_init__(self) -> None:
        for name in LABELS:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise InvalidConfigError(f"threshold for {name} must be a number in [0, 1], got {value!r}.")

    def as_tuple(self) -> tuple[float, float, float]:
        """Thresholds in label order (negative, neutral, positive)."""
        return (self.negative, self.neutral, self.positive)


@dataclass(frozen=True)
class Sample:
    """One training image.

    Attributes:
        image: Image path.
        post_id: The post it came from.
        label: Hard label index (0 negative, 1 neutral, 2 positive).
        probs: Teacher probabilities (soft target).
        split: ``"train"`` or ``"val"``.
    """

    image: str
    post_id: str
    label: int
    probs: tuple[float, float, float]
    split: Split

    def to_dict(self) -> dict[str, Any]:
        """The JSONL row written by :func:`write_selection`."""
        return {"image": self.image, "post_id": self.post_id, "label": LABELS[self.label],
                "label_id": self.label, "probs": list(self.probs)}


@dataclass
class Selection:
    """A selected, split training set.

    Attributes:
        train: Training images.
        val: Validation images.
        class_weights: Balanced weights ``n / (k * n_c)`` from the train images, in label
            order; ``0.0`` for a class with no train images.
        counts: Posts and images per class at each stage: ``input``, ``confident``,
            ``balanced``, ``train``, ``val`` (each ``{"posts": {label: n}, "images": {label: n}}``).
        settings: The options used (thresholds, balance, val_fraction, seed).
        warnings: Problems worth showing to the user (e.g. an empty class).
    """

    train: list[Sample] = field(default_factory=list)
    val: list[Sample] = field(default_factory=list)
    class_weights: tuple[float, float, float] = (0.0, 0.0, 0.0)
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-ready report: settings, class weights, counts and warnings."""
        return {**self.settings, "class_weights": list(self.class_weights), "counts": self.counts,
                "warnings": list(self.warnings)}


def select_samples(
    rows: Iterable[LabeledPost],
    *,
    thresholds: Thresholds | None = None,
    balance: bool = False,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> Selection:
    """Keep confident teacher labels, optionally balance classes, split train/val, weigh classes.

    Args:
        rows: Teacher-cache rows (see :func:`imgsent.distill.labels.iter_label_cache`).
        thresholds: Per-class confidence thresholds; default :class:`Thresholds` (0.7/0.9/0.9).
        balance: Downsample every class to the smallest one (in posts, seeded). Default ``False``
            (the paper keeps all and uses class weights instead).
        val_fraction: Share of each class's posts put in val (stratified). Default 0.1.
        seed: Seed for balancing and splitting. Default 0.

    Returns:
        A :class:`Selection`.

    Raises:
        InvalidConfigError: ``val_fraction`` is outside [0, 1).

    Example:
        >>> rows = [LabeledPost(str(i), (f"{i}.jpg",), (0.05, 0.05, 0.9)) for i in range(10)]
        >>> sel = select_samples(rows, val_fraction=0.2, seed=0)
        >>> len(sel.train), len(sel.val), sel.counts["confident"]["posts"]
        (8, 2, {'negative': 0, 'neutral': 0, 'positive': 10})
    """
    thresholds = thresholds or Thresholds()
    if not isinstance(val_fraction, (int, float)) or not 0.0 <= val_fraction < 1.0:
        raise InvalidConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}.")
    limits = thresholds.as_tuple()
    all_rows: list[LabeledPost] = []
    by_class: list[list[LabeledPost]] = [[], [], []]
    for row in rows:
        if not row.images:
            continue
        all_rows.append(row)
        if row.confidence >= limits[row.label]:
            by_class[row.label].append(row)
    selection = Selection(settings={"thresholds": asdict(thresholds), "balance": balance,
                                    "val_fraction": val_fraction, "seed": seed})
    selection.counts["input"] = _count(all_rows)
    selection.counts["confident"] = _count([r for group in by_class for r in group])
    rng = random.Random(seed)
    for group in by_class:
        group.sort(key=lambda r: r.id)
        rng.shuffle(group)
    if balance:
        smallest = min(len(g) for g in by_class)
        if smallest == 0:
            selection.warnings.append("balance=True but a class has no confident posts; nothing was downsampled.")
        else:
            by_class = [g[:smallest] for g in by_class]
    selection.counts["balanced"] = _count([r for group in by_class for r in group])
    for label, group in enumerate(by_class):
        n_val = math.floor(len(group) * val_fraction + 0.5) if len(group) > 1 else 0
        for index, row in enumerate(group):
            split: Split = "val" if index < n_val else "train"
            target = selection.val if split == "val" else selection.train
            target.extend(Sample(image, row.id, label, row.probs, split) for image in row.images)
    selection.train.sort(key=lambda s: (s.post_id, s.image))
    selection.val.sort(key=lambda s: (s.post_id, s.image))
    selection.counts["train"] = _count_samples(selection.train)
    selection.counts["val"] = _count_samples(selection.val)
    selection.class_weights = balanced_class_weights([s.label for s in selection.train])
    for label, weight in zip(LABELS, selection.class_weights):
        if weight == 0.0:
            selection.warnings.append(f"no train images for class {label!r}; its class weight is 0.")
    return selection


def balanced_class_weights(labels: Iterable[int], num_classes: int = 3) -> tuple[float, ...]:
    """Weights ``n / (k * n_c)`` as scikit-learn's ``"balanced"``; ``0.0`` for absent classes.

    Example:
        >>> balanced_class_weights([0, 1, 2, 2])
        (1.3333333333333333, 1.3333333333333333, 0.6666666666666666)
    """
    counts = [0] * num_classes
    for label in labels:
        counts[label] += 1
    total = sum(counts)
    return tuple(total / (num_classes * c) if c else 0.0 for c in counts)


def write_selection(selection: Selection, folder: str | Path, *, teacher: dict[str, Any] | None = None) -> Path:
    """Write ``train.jsonl``, ``val.jsonl`` and ``selection.json`` into ``folder``; return the folder.

    Args:
        selection: From :func:`select_samples`.
        folder: Output folder (created if missing).
        teacher: Teacher id and revision (e.g. the cache header's ``"teacher"``), recorded for provenance.

    Example:
        >>> write_selection(sel, "run/selection")  # doctest: +SKIP
        PosixPath('run/selection')
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, samples in (("train", selection.train), ("val", selection.val)):
        lines = [json.dumps(s.to_dict(), ensure_ascii=False) + "\n" for s in samples]
        (out / f"{name}.jsonl").write_text("".join(lines), encoding="utf-8")
    summary = {**selection.summary(), "labels": list(LABELS), "teacher": teacher}
    (out / "selection.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def _count(rows: list[LabeledPost]) -> dict[str, dict[str, int]]:
    posts, images = [0, 0, 0], [0, 0, 0]
    for row in rows:
        posts[row.label] += 1
        images[row.label] += len(row.images)
    return {"posts": dict(zip(LABELS, posts)), "images": dict(zip(LABELS, images))}


def _count_samples(samples: list[Sample]) -> dict[str, dict[str, int]]:
    posts: list[set[str]] = [set(), set(), set()]
    images = [0, 0, 0]
    for s in samples:
        posts[s.label].add(s.post_id)
        images[s.label] += 1
    return {"posts": dict(zip(LABELS, map(len, posts))), "images": dict(zip(LABELS, images))}


__all__ = ["Sample", "Selection", "Thresholds", "balanced_class_weights", "select_samples", "write_selection"]
