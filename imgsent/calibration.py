"""Temperature scaling and expected calibration error (ECE).

A model's softmax outputs are often over- or under-confident. Temperature scaling (Guo et al.,
ICML 2017) divides the logits by one number ``T`` fitted to minimise the negative
log-likelihood on held-out data; it changes no prediction (the argmax is the same), only how
sure the probabilities say the model is. ``imgsent distill`` fits ``T`` on held-out images
against the *teacher's* labels (never human labels) and stores it in ``config.json``; the
:class:`~imgsent.Predictor` applies it, so every ``confidence`` is calibrated.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

_T_MIN, _T_MAX = 0.05, 20.0


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of a reliability diagram: its range, count, mean confidence and accuracy."""

    low: float
    high: float
    count: int
    confidence: float
    accuracy: float


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and how well calibrated the model is before and after it.

    Attributes:
        temperature: Divide logits by this before the softmax.
        ece_before: Expected calibration error (top label, 15 equal-width bins) at ``T = 1``.
        ece_after: The same at the fitted temperature.
        nll_before: Mean negative log-likelihood at ``T = 1``.
        nll_after: The same at the fitted temperature.
        n: Held-out images used.
        source: Where the held-out logits came from (e.g. ``"val split"``).
        bins_before: Reliability diagram at ``T = 1``.
        bins_after: Reliability diagram at the fitted temperature.
    """

    temperature: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    n: int
    source: str
    bins_before: tuple[ReliabilityBin, ...]
    bins_after: tuple[ReliabilityBin, ...]

    def metrics(self) -> dict[str, Any]:
        """The scalar results, for a model card's metrics table."""
        return {"temperature": self.temperature, "ece_before": self.ece_before, "ece_after": self.ece_after,
                "nll_before": self.nll_before, "nll_after": self.nll_after, "heldout_images": self.n}

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (stored in the model's provenance)."""
        return {**self.metrics(), "source": self.source,
                "bins_before": [asdict(b) for b in self.bins_before], "bins_after": [asdict(b) for b in self.bins_after]}


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> tuple[ReliabilityBin, ...]:
    """Top-label reliability diagram: equal-width confidence bins over [0, 1], empty bins included."""
    confidence, predicted = probs.max(dim=-1)
    correct = (predicted == labels).float()
    index = (confidence * bins).long().clamp(0, bins - 1)
    out = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        out.append(ReliabilityBin(b / bins, (b + 1) / bins, count,
                                  float(confidence[members].mean()) if count else 0.0,
                                  float(correct[members].mean()) if count else 0.0))
    return tuple(out)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """Top-label ECE: the count-weighted mean gap between confidence and accuracy over ``bins`` bins.

    Example:
        >>> probs = torch.tensor([[0.9, 0.05, 0.05], [0.2, 0.1, 0.7]])
        >>> round(expected_calibration_error(probs, torch.tensor([0, 0])), 3)
        0.4
    """
    n = len(labels)
    if n == 0:
        return 0.0
    return sum(b.count * abs(b.accuracy - b.confidence) for b in reliability_bins(probs, labels, bins)) / n


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature in [0.05, 20] that minimises the mean NLL of ``softmax(logits / T)``.

    The NLL is convex in ``1 / T``, so a bounded golden-section search on ``log T`` finds it.

    Example:
        >>> logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.0, 4.0], [4.0, 0.0, 0.0], [0.0, 0.0, 4.0]])
        >>> fit_temperature(logits, torch.tensor([0, 2, 2, 0]))   # half wrong: the optimum is 4 / ln 2
        5.77078
    """
    logits, labels = logits.double(), labels.long()

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(logits / math.exp(log_t), labels))

    lo, hi = math.log(_T_MIN), math.log(_T_MAX)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return round(math.exp((lo + hi) / 2), 6)


def calibrate(logits: torch.Tensor, labels: torch.Tensor, *, source: str, bins: int = 15) -> Calibration:
    """Fit a temperature on held-out ``logits`` [N, 3] and teacher ``labels`` [N]; measure ECE before and after."""
    logits, labels = logits.float(), labels.long()
    temperature = fit_temperature(logits, labels) if len(labels) else 1.0
    before, after = logits.softmax(-1), (logits / temperature).softmax(-1)
    return Calibration(
        temperature=temperature,
        ece_before=expected_calibration_error(before, labels, bins),
        ece_after=expected_calibration_error(after, labels, bins),
        nll_before=float(F.cross_entropy(logits, labels)) if len(labels) else 0.0,
        nll_after=float(F.cross_entropy(logits / temperature, labels)) if len(labels) else 0.0,
        n=len(labels),
        source=source,
        bins_before=reliability_bins(before, labels, bins),
        bins_after=reliability_bins(after, labels, bins),
    )


def calibrate_model_folder(
    folder: str | os.PathLike[str], paths: Sequence[str], labels: Sequence[int], *, source: str = "val split"
) -> Calibration | None:
    """Fit the temperature of a saved model on held-out images and their teacher labels, and save it.

    Skipped (returns ``None``) when training already calibrated the model (the linear probe does)
    or no image can be read. The result is stored in ``config.json`` as ``temperature`` and under
    ``provenance.training.calibration``.
    """
    from imgsent.models.sentiment import SentimentModel
    from imgsent.predictor import Predictor

    model = SentimentModel.from_folder(folder)
    training = model.config.provenance.get("training", {})
    if "calibration" in training or not paths:
        return None
    unscaled = dataclasses.replace(model.config, temperature=1.0)
    # PyTorch: a calibration run is one pass, and must leave nothing in the engine cache
    predictor = Predictor(SentimentModel(unscaled, net=model.net), device="cpu", dtype="float32", backend="torch")
    predictions = predictor.predict(list(paths), workers=0)
    pairs = [(p, label) for p, label in zip(predictions, labels) if p.ok]
    if not pairs:
        return None
    logits = torch.tensor([[p.negative, p.neutral, p.positive] for p, _ in pairs]).clamp_min(1e-12).log()
    fitted = calibrate(logits, torch.tensor([label for _, label in pairs]), source=source)
    provenance = {**model.config.provenance, "training": {**training, "calibration": fitted.to_dict()}}
    dataclasses.replace(model.config, temperature=fitted.temperature, provenance=provenance).save(folder)
    return fitted
