"""What every way of training ends with: class weights, validation metrics and the run's export.

Shared by the mini-batch :class:`~imgsent.distill.trainer.Trainer` and the linear probe
(:mod:`imgsent.distill.probe`), so both weight classes, score validation rows and write
``model/`` and ``metrics.json`` the same way.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from imgsent.distill.distributed import DistEnv
from imgsent.distill.records import ClassWeights
from imgsent.distill.select import balanced_class_weights


def class_weight_tensor(setting: ClassWeights, labels: torch.Tensor) -> torch.Tensor | None:
    """Per-class loss weights [3] for a recipe's ``class_weights``; ``None`` for ``"none"``.

    ``"balanced"`` uses :func:`~imgsent.distill.select.balanced_class_weights` on ``labels``.

    Example:
        >>> class_weight_tensor("balanced", torch.tensor([0, 1, 2, 2]))
        tensor([1.3333, 1.3333, 0.6667])
    """
    if setting == "none":
        return None
    if setting == "balanced":
        return torch.tensor(balanced_class_weights(labels.tolist()), dtype=torch.float32)
    return torch.tensor(setting, dtype=torch.float32)


def validation_sums(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sufficient statistics of one validation batch, float64 on CPU [8].

    ``(loss sum, count, correct per class [3], total per class [3])``; add them over batches and
    ranks, then turn them into metrics with :func:`validation_metrics`.
    """
    logits, labels = logits.float(), labels.to(logits.device)
    sums = torch.zeros(8, dtype=torch.float64)
    sums[0] = F.cross_entropy(logits, labels, reduction="sum").item()
    sums[1] = len(labels)
    hits = (logits.argmax(-1) == labels).cpu()
    sums[2:5] = torch.bincount(labels.cpu()[hits], minlength=3).double()
    sums[5:8] = torch.bincount(labels.cpu(), minlength=3).double()
    return sums


def validation_metrics(sums: torch.Tensor) -> tuple[float | None, float | None, float | None]:
    """``(mean loss, accuracy, balanced accuracy)`` from :func:`validation_sums`; ``None`` for no rows.

    Balanced accuracy is the mean recall over the classes present.
    """
    if sums[1] == 0:
        return None, None, None
    present = sums[5:8] > 0
    recall = (sums[2:5][present] / sums[5:8][present]).mean().item()
    return sums[0].item() / sums[1].item(), sums[2:5].sum().item() / sums[1].item(), recall


def export_run(model: Any, out_dir: Path, env: DistEnv, training: dict[str, Any], *,
               temperature: float | None = None) -> Path:
    """Record ``training`` in the model's provenance; rank 0 writes ``model/`` and ``metrics.json``.

    All ranks wait for the write. ``model.config`` is updated in place on every rank, with the
    calibration ``temperature`` when one was fitted.

    Returns:
        The model folder, ``out_dir / "model"``.
    """
    config = model.config
    extra = {} if temperature is None else {"temperature": temperature}
    model.config = dataclasses.replace(config, provenance={**config.provenance, "training": training}, **extra)
    model_dir = out_dir / "model"
    if env.is_main:
        model.save_pretrained(model_dir)
        (out_dir / "metrics.json").write_text(json.dumps(training, indent=1) + "\n", encoding="utf-8")
    if env.distributed:
        dist.barrier()
    return model_dir
