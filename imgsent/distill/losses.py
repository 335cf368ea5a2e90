"""Distillation losses: smoothed cross-entropy on the teacher's hard labels, or KL to its probabilities."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from imgsent.errors import InvalidConfigError


def distill_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    probs: torch.Tensor | None,
    *,
    targets: str,
    label_smoothing: float,
    temperature: float,
    class_weights: torch.Tensor | None,
) -> torch.Tensor:
    """Per-sample losses [n]: smoothed cross-entropy on hard labels, or KL to the teacher's probabilities.

    Class weights multiply each sample's loss by the weight of its hard label (Keras
    ``class_weight`` semantics); the caller averages over the batch size.
    """
    logits = logits.float()
    if targets == "hard":
        per = F.cross_entropy(logits, labels, label_smoothing=label_smoothing, reduction="none")
    else:
        if probs is None:
            raise InvalidConfigError("targets='soft' needs teacher probabilities; pass probs, or use targets='hard'.")
        teacher = torch.softmax(torch.log(probs.clamp_min(1e-8)) / temperature, dim=-1)
        log_student = torch.log_softmax(logits / temperature, dim=-1)
        per = (teacher * (torch.log(teacher.clamp_min(1e-12)) - log_student)).sum(-1) * temperature**2
    if class_weights is not None:
        per = per * class_weights[labels]
    return per
