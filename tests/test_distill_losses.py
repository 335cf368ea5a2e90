"""Distillation losses and the shared class weights / validation metrics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from imgsent.distill.finalize import class_weight_tensor, validation_metrics, validation_sums
from imgsent.distill.losses import distill_loss
from imgsent.errors import InvalidConfigError

LOGITS = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.2, 0.3], [-1.0, 0.5, 3.0], [0.0, 0.0, 0.0]])
LABELS = torch.tensor([0, 1, 2, 2])


def test_hard_targets_are_smoothed_cross_entropy_times_class_weight() -> None:
    weights = torch.tensor([1.0, 2.0, 0.5])
    plain = distill_loss(LOGITS, LABELS, None, targets="hard", label_smoothing=0.2, temperature=1.0, class_weights=None)
    weighted = distill_loss(LOGITS, LABELS, None, targets="hard", label_smoothing=0.2, temperature=1.0, class_weights=weights)
    torch.testing.assert_close(plain, F.cross_entropy(LOGITS, LABELS, label_smoothing=0.2, reduction="none"))
    torch.testing.assert_close(weighted, plain * torch.tensor([1.0, 2.0, 0.5, 0.5]))


def test_soft_targets_are_temperature_scaled_kl() -> None:
    probs = torch.softmax(LOGITS, -1)
    same = distill_loss(LOGITS, LABELS, probs, targets="soft", label_smoothing=0.0, temperature=2.0, class_weights=None)
    torch.testing.assert_close(same, torch.zeros(4), atol=1e-6, rtol=0)  # student == teacher: no loss
    other = distill_loss(torch.zeros(4, 3), LABELS, probs, targets="soft", label_smoothing=0.0, temperature=2.0,
                         class_weights=None)
    teacher = torch.softmax(torch.log(probs) / 2.0, -1)
    expected = (teacher * (teacher.log() - torch.log_softmax(torch.zeros(4, 3), -1))).sum(-1) * 4.0
    torch.testing.assert_close(other, expected)
    with pytest.raises(InvalidConfigError, match="needs teacher probabilities"):
        distill_loss(LOGITS, LABELS, None, targets="soft", label_smoothing=0.0, temperature=1.0, class_weights=None)


def test_class_weights_and_validation_metrics() -> None:
    torch.testing.assert_close(class_weight_tensor("balanced", LABELS), torch.tensor([4 / 3, 4 / 3, 2 / 3]))
    assert class_weight_tensor("none", LABELS) is None
    torch.testing.assert_close(class_weight_tensor((1.0, 2.0, 0.5), LABELS), torch.tensor([1.0, 2.0, 0.5]))
    sums = validation_sums(LOGITS[:2], LABELS[:2]) + validation_sums(LOGITS[2:], LABELS[2:])
    loss, accuracy, balanced = validation_metrics(sums)
    assert loss == pytest.approx(F.cross_entropy(LOGITS, LABELS).item())
    hits = [True, False, True, False]  # argmax: 0, 2, 2, 0
    assert accuracy == pytest.approx(sum(hits) / 4)
    assert balanced == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert validation_metrics(torch.zeros(8, dtype=torch.float64)) == (None, None, None)
