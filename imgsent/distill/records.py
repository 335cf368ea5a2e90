"""Training records: the recipe (:class:`TrainConfig`), the rows, and what a run reports.

Plain data with validation in ``__post_init__``; no torch import, so recipes load and validate
without the training stack. Everything that trains lives in :mod:`imgsent.distill.trainer`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from imgsent.config import LABELS
from imgsent.errors import InvalidConfigError

Targets = Literal["hard", "soft"]
KeepModel = Literal["best", "last"]
ClassWeights = Literal["balanced", "none"] | tuple[float, float, float]
Solver = Literal["sgd", "lbfgs"]
# Options that may change between a run and its resumption without changing the result.
RESUME_FREE = frozenset({"max_steps", "num_workers", "checkpoint_every", "keep_checkpoints", "device"})


@dataclass(frozen=True)
class TrainConfig:
    """How to train the student. Defaults follow the paper.

    Args:
        batch_size: Global batch (all processes together). Default 32.
        lr: RAdam learning rate. Default 1e-4.
        weight_decay: RAdam weight decay. Default 0.0.
        label_smoothing: For hard-label cross-entropy. Default 0.2.
        targets: ``"hard"`` (teacher's argmax, the paper) or ``"soft"`` (KL to its probabilities).
        temperature: Softmax temperature for ``targets="soft"``; the loss is scaled by T². Default 1.0.
        class_weights: ``"balanced"`` (n / (3 n_c) from the train labels), ``"none"``, or 3 weights
            (e.g. ``selection.json``'s). Each sample's loss is multiplied by its class's weight.
        augment: Seeded random resized crop (area ``augment_scale``) and horizontal flip. Default off.
        augment_scale: Area fraction range of the random crop. Default (0.35, 1.0).
        freeze_backbone_epochs: Epochs training only the head. Default 1.
        epochs: Epochs training everything, after the frozen ones. Default 5. BatchNorm running
            statistics stay as initialised (e.g. ImageNet's) in every phase; only its scale and shift
            train, so N processes train the same model as one process on the global batch.
        seed: Seeds the data order, augmentation and dropout. Default 0.
        amp: bf16 autocast on CUDA (ignored on CPU). Default True.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``... Under torchrun, CUDA uses ``cuda:LOCAL_RANK``.
        num_workers: Decoding processes per rank; ``None`` picks from the core count.
        checkpoint_every: Also checkpoint every this many steps (0: only at epoch ends). Default 1000.
        keep_checkpoints: Newest checkpoints kept on disk. Default 2.
        keep_model: Export the epoch with the best validation accuracy, or the last. Default "best".
        max_steps: Stop (with a checkpoint) after this many steps in total; for tests and budgets.
        solver: ``"sgd"`` (the paper: RAdam on mini-batches) or ``"lbfgs"``: a linear probe fitted by
            full-batch L-BFGS on frozen, standardised, cached features (see :mod:`imgsent.distill.probe`);
            it replaces the frozen epochs, and ``epochs`` > 0 then fine-tunes everything with RAdam.
        l2: ``solver="lbfgs"`` only: penalty on the squared head weights. Default 1.0.

    Example:
        >>> TrainConfig(epochs=1, targets="soft", temperature=2.0).batch_size
        32
    """

    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.0
    label_smoothing: float = 0.2
    targets: Targets = "hard"
    temperature: float = 1.0
    class_weights: ClassWeights = "balanced"
    augment: bool = False
    augment_scale: tuple[float, float] = (0.35, 1.0)
    freeze_backbone_epochs: int = 1
    epochs: int = 5
    seed: int = 0
    amp: bool = True
    device: str = "auto"
    num_workers: int | None = None
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    keep_model: KeepModel = "best"
    max_steps: int | None = None
    solver: Solver = "sgd"
    l2: float = 1.0

    def __post_init__(self) -> None:
        _check(self.batch_size, int, 1, None, "batch_size")
        _check(self.lr, float, 0.0, None, "lr")
        _check(self.weight_decay, float, 0.0, None, "weight_decay")
        _check(self.label_smoothing, float, 0.0, 1.0, "label_smoothing")
        _check(self.temperature, float, 1e-6, None, "temperature")
        _check(self.freeze_backbone_epochs, int, 0, None, "freeze_backbone_epochs")
        _check(self.epochs, int, 0, None, "epochs")
        _check(self.seed, int, 0, 2**62, "seed")
        _check(self.checkpoint_every, int, 0, None, "checkpoint_every")
        _check(self.keep_checkpoints, int, 1, None, "keep_checkpoints")
        if self.num_workers is not None:
            _check(self.num_workers, int, 0, 256, "num_workers")
        if self.max_steps is not None:
            _check(self.max_steps, int, 1, None, "max_steps")
        if self.freeze_backbone_epochs + self.epochs < 1:
            raise InvalidConfigError("freeze_backbone_epochs + epochs must be at least 1, got 0.")
        _check(self.l2, float, 0.0, None, "l2")
        for name, value, valid in (("targets", self.targets, ("hard", "soft")), ("keep_model", self.keep_model, ("best", "last")),
                                   ("solver", self.solver, ("sgd", "lbfgs"))):
            if value not in valid:
                raise InvalidConfigError(f"{name} must be one of {list(valid)}, got {value!r}.")
        weights = self.class_weights
        if not (weights in ("balanced", "none") or (
            isinstance(weights, (tuple, list)) and len(weights) == 3
            and all(isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0 for w in weights)
        )):
            raise InvalidConfigError(f"class_weights must be 'balanced', 'none' or 3 non-negative numbers, got {weights!r}.")
        low, high = self.augment_scale
        if not 0 < low <= high <= 1:
            raise InvalidConfigError(f"augment_scale must satisfy 0 < low <= high <= 1, got {self.augment_scale!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["augment_scale"] = list(self.augment_scale)
        if isinstance(self.class_weights, tuple):
            data["class_weights"] = list(self.class_weights)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from JSON; unknown keys raise :class:`InvalidConfigError` listing the valid ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidConfigError(f"Unknown training option(s) {unknown}. Valid options: {', '.join(sorted(known))}.")
        values = dict(data)
        for key in ("augment_scale", "class_weights"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values)


def _check(value: Any, kind: type, low: float | None, high: float | None, name: str) -> None:
    ok = isinstance(value, kind) or (kind is float and isinstance(value, int))
    ok = ok and not isinstance(value, bool) and math.isfinite(value)
    if ok and ((low is not None and value < low) or (high is not None and value > high)):
        ok = False
    if not ok:
        bounds = f"[{low}, {'inf' if high is None else high}]"
        raise InvalidConfigError(f"{name} must be a {kind.__name__} in {bounds}, got {value!r}.")


@dataclass(frozen=True)
class TrainRow:
    """One training image: its path, the teacher's hard label (0/1/2) and, optionally, its probabilities."""

    path: str
    label: int
    probs: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class EpochMetrics:
    """Metrics of one finished epoch (validation values are ``None`` without validation rows)."""

    epoch: int
    phase: Literal["frozen", "full"]
    steps: int
    train_loss: float
    val_loss: float | None
    val_accuracy: float | None
    val_balanced_accuracy: float | None


@dataclass(frozen=True)
class StepProgress:
    """Reported to ``on_step`` after every optimizer step (on rank 0).

    Attributes:
        step: Optimizer steps done in total (including those before a resume).
        total_steps: Steps of the whole run.
        epoch: Current epoch, counted from 0.
        total_epochs: Frozen plus full epochs.
        phase: ``"frozen"`` (head only) or ``"full"``.
        loss: Mean loss of this step over all processes.
    """

    step: int
    total_steps: int
    epoch: int
    total_epochs: int
    phase: Literal["frozen", "full"]
    loss: float


@dataclass(frozen=True)
class TrainResult:
    """What :func:`~imgsent.distill.trainer.train_student` did.

    Attributes:
        model_dir: The exported model folder (``<out_dir>/model``).
        history: One :class:`EpochMetrics` per finished epoch, including those before a resume.
        best_epoch: Epoch with the best validation accuracy, or ``None`` without validation.
        steps: Optimizer steps done in total.
        completed: False when ``max_steps`` stopped the run early (resume to continue).
        resumed_from: The checkpoint the run continued from, if any.
        checkpoint: The newest checkpoint written.
        bad_images: Paths of rows whose image could not be decoded (skipped in training and validation).
    """

    model_dir: Path
    history: tuple[EpochMetrics, ...]
    best_epoch: int | None
    steps: int
    completed: bool
    resumed_from: Path | None
    checkpoint: Path | None
    bad_images: tuple[str, ...] = field(default_factory=tuple)


def coerce_rows(rows: Iterable[Any], *, where: str = "rows") -> list[TrainRow]:
    """Accept :class:`TrainRow`, selection samples (``image``, ``label``, ``probs``), dicts or tuples.

    Dicts may use ``path`` or ``image``; ``label_id`` or ``label`` (an index or a label name);
    ``probs`` optional. Tuples are ``(path, label)`` or ``(path, label, probs)``.

    Raises:
        InvalidConfigError: A row has no path, a label outside 0-2, or probabilities that are not 3
            non-negative numbers summing to 1.
    """
    out = []
    for number, row in enumerate(rows):
        if isinstance(row, TrainRow):
            path, label, probs = row.path, row.label, row.probs
        elif isinstance(row, dict):
            path = row.get("path", row.get("image"))
            label = row.get("label_id", row.get("label"))
            probs = row.get("probs")
        elif isinstance(row, (tuple, list)) and len(row) in (2, 3):
            path, label, probs = row[0], row[1], row[2] if len(row) == 3 else None
        else:
            path, label, probs = getattr(row, "path", getattr(row, "image", None)), getattr(row, "label", None), getattr(row, "probs", None)
        if isinstance(label, str) and label in LABELS:
            label = LABELS.index(label)
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise InvalidConfigError(f"{where}[{number}] has no image path: {row!r:.120}")
        if not isinstance(label, int) or isinstance(label, bool) or label not in (0, 1, 2):
            raise InvalidConfigError(f"{where}[{number}] label must be 0, 1, 2 or one of {list(LABELS)}, got {label!r}.")
        if probs is not None:
            ok = isinstance(probs, (list, tuple)) and len(probs) == 3
            ok = ok and all(isinstance(p, (int, float)) and math.isfinite(p) and p >= 0 for p in probs)
            if not ok or abs(sum(probs) - 1.0) > 1e-3:
                raise InvalidConfigError(f"{where}[{number}] probs must be 3 non-negative numbers summing to 1, got {probs!r}.")
            probs = (float(probs[0]), float(probs[1]), float(probs[2]))
        out.append(TrainRow(os.fspath(path), label, probs))
    return out


def read_rows(path: str | os.PathLike[str]) -> list[TrainRow]:
    """Read rows from a JSONL file such as a selection's ``train.jsonl`` (relative paths resolve against it)."""
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n")):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InvalidConfigError(f"{path}:{number + 1} is not valid JSON: {exc}") from None
    parsed = coerce_rows(rows, where=str(path))
    return [TrainRow(str(path.parent / r.path), r.label, r.probs) if not os.path.isabs(r.path) else r for r in parsed]


def rows_fingerprint(train: Sequence[TrainRow], val: Sequence[TrainRow]) -> str:
    """SHA-256 of every row, to check a resumed run sees the same data."""
    digest = hashlib.sha256()
    for split, rows in (("train", train), ("val", val)):
        for row in rows:
            digest.update(f"{split}\t{row.path}\t{row.label}\t{row.probs}\n".encode())
    return digest.hexdigest()
