"""Linear probe: fit the head on frozen backbone features with full-batch L-BFGS.

With a few hundred to a few thousand weakly labelled images, fine-tuning a backbone
over-fits the teacher's noise; a strongly regularised linear classifier on frozen,
standardised features generalises better (``docs/models.md`` has the measurements). This
is the classic linear-probe protocol (logistic regression with an L2 penalty, fitted by
L-BFGS), run deterministically on cached features:

1. every training image (and, with ``augment``, its mirror) is embedded once by the frozen
   backbone in eval mode;
2. features are standardised with the training mean and standard deviation;
3. the head minimises the class-weighted mean loss (hard labels with label smoothing, or KL
   to the teacher's probabilities) plus ``l2 * ||W||^2`` over its weight matrices;
4. the standardisation is folded into the head's first linear layer, so the exported model is
   an ordinary network that needs no extra preprocessing.
"""

from __future__ import annotations

import copy
import dataclasses

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imgsent.data import iter_row_batches
from imgsent.distill import finalize
from imgsent.distill.distributed import DistEnv
from imgsent.distill.losses import distill_loss
from imgsent.distill.records import EpochMetrics, TrainConfig, TrainResult, TrainRow
from imgsent.runtime import default_workers
from imgsent.transforms import normalize


@torch.no_grad()
def embed_rows(net: nn.Module, paths: Sequence[str], preprocess: Any, *, device: torch.device, workers: int,
               batch_size: int = 64, mirror: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen-backbone features of every path: (features [N, D] float32 on CPU, ok mask [N])."""
    was_training = net.training
    net.eval()
    indices = list(range(len(paths)))
    batches = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    features = torch.zeros(len(paths), int(getattr(net, "feature_dim")))
    ok = torch.zeros(len(paths), dtype=torch.bool)
    for index, pixels, good in iter_row_batches(list(paths), preprocess, batches, workers=workers):
        if not good.any():
            continue
        if mirror:
            pixels = pixels.flip(-1)
        x = normalize(pixels.to(device), preprocess)
        features[index[good]] = net.features(x).float().cpu()
        ok[index[good]] = True
    net.train(was_training)
    return features, ok


def fit_probe(
    head: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    probs: torch.Tensor | None,
    *,
    l2: float,
    class_weights: torch.Tensor | None,
    targets: str = "hard",
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    max_iter: int = 200,
) -> float:
    """Fit ``head`` on standardised ``features`` in place; fold the standardisation into it.

    Args:
        head: The head (its first module with weights must be ``nn.Linear``).
        features: Training features [N, D].
        labels: Hard labels [N].
        probs: Teacher probabilities [N, 3], needed for ``targets="soft"``.
        l2: Penalty on the squared weights of every linear layer.
        class_weights: Per-class weights [3] (each sample's loss is weighted by its hard label).
        targets: ``"hard"`` or ``"soft"``.
        label_smoothing: Label smoothing for hard targets.
        temperature: Softmax temperature for soft targets.
        max_iter: L-BFGS iterations.

    Returns:
        The final value of the objective.
    """
    torch.manual_seed(0)
    mean = features.mean(0)
    std = features.std(0) + 1e-6
    x = (features - mean) / std
    weights = [p for name, p in head.named_parameters() if name.endswith("weight")]
    optimizer = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=max_iter, history_size=20,
                                  line_search_fn="strong_wolfe")
    sample_weight = class_weights[labels] if class_weights is not None else torch.ones(len(labels))
    norm = sample_weight.sum().clamp_min(1e-12)
    head.train()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        per = distill_loss(head(x), labels, probs, targets=targets, label_smoothing=label_smoothing,
                              temperature=temperature, class_weights=None)
        loss = (per * sample_weight).sum() / norm + l2 * sum((w**2).sum() for w in weights)
        loss.backward()
        return loss

    value = float(optimizer.step(closure).detach())
    head.eval()
    _fold_standardisation(head, mean, std)
    return value


_CROSSFIT_FOLDS = 5


def crossfit_logits(head: nn.Module, x: torch.Tensor, y: torch.Tensor, probs: torch.Tensor | None, fold_of: torch.Tensor,
                    folds: int, **fit: Any) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Out-of-fold logits for calibration when there is no val split: refit a copy of the unfitted
    ``head`` on all folds but one, score the one left out. The exported head is not touched."""

    logits = torch.zeros(len(y), 3)
    for fold in range(folds):
        test = fold_of == fold
        part = copy.deepcopy(head)
        fit_probe(part, x[~test], y[~test], probs[~test] if probs is not None else None, **fit)
        with torch.no_grad():
            logits[test] = part(x[test]).float()
    return logits, y, f"{folds}-fold cross-fitted probe (no val split)"


@torch.no_grad()
def _fold_standardisation(head: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
    first = next(m for m in head.modules() if isinstance(m, nn.Linear))
    first.weight.div_(std)
    first.bias.sub_(first.weight @ mean)


def run_probe(model: Any, train: Sequence[TrainRow], val: Sequence[TrainRow], config: TrainConfig, out_dir: Path,
              env: DistEnv) -> TrainResult:
    """Fit a linear probe for ``train_student`` (``solver="lbfgs"``) and export it like the trainer does.

    Every rank computes the same deterministic fit; only rank 0 writes.
    """
    out_dir = Path(out_dir)
    net = model.net.to(env.device)
    workers = config.num_workers if config.num_workers is not None else default_workers(env.device)
    paths = [r.path for r in train]
    feats, ok = embed_rows(net, paths, model.config.preprocess, device=env.device, workers=workers)
    labels = torch.tensor([r.label for r in train], dtype=torch.long)
    probs = torch.tensor([r.probs for r in train], dtype=torch.float32) if all(r.probs is not None for r in train) else None
    if config.augment:
        mirrored, _ = embed_rows(net, paths, model.config.preprocess, device=env.device, workers=workers, mirror=True)
        feats, ok = torch.cat([feats, mirrored]), torch.cat([ok, ok])
        labels = torch.cat([labels, labels])
        probs = torch.cat([probs, probs]) if probs is not None else None
    x, y = feats[ok], labels[ok]
    p = probs[ok] if probs is not None and config.targets == "soft" else None
    weights = finalize.class_weight_tensor(config.class_weights, y)
    net.head.cpu()
    initial_head = copy.deepcopy(net.head)
    loss = fit_probe(net.head, x, y, p, l2=config.l2, class_weights=weights, targets=config.targets,
                     label_smoothing=config.label_smoothing, temperature=config.temperature)
    net.head.to(env.device)
    net.eval()
    val_loss = val_acc = val_bal = None
    heldout: tuple[torch.Tensor, torch.Tensor, str] | None = None
    if not val and len(y) >= 2 * _CROSSFIT_FOLDS:
        fold_of = torch.arange(len(feats)) % len(paths) % _CROSSFIT_FOLDS  # a mirror shares its image's fold
        heldout = crossfit_logits(initial_head, x, y, p, fold_of[ok], _CROSSFIT_FOLDS, l2=config.l2, class_weights=weights,
                                  targets=config.targets, label_smoothing=config.label_smoothing,
                                  temperature=config.temperature)
    sums = torch.zeros(8, dtype=torch.float64)
    if val:
        vfeats, vok = embed_rows(net, [r.path for r in val], model.config.preprocess, device=env.device, workers=workers)
        vy = torch.tensor([r.label for r in val], dtype=torch.long)[vok]
        if len(vy):
            with torch.no_grad():
                logits = net.head(vfeats[vok].to(env.device)).float().cpu()
            heldout = (logits, vy, "val split")
            sums = finalize.validation_sums(logits, vy)
    val_loss, val_acc, val_bal = finalize.validation_metrics(sums)
    metrics = EpochMetrics(0, "frozen", 1, loss, val_loss, val_acc, val_bal)
    bad = tuple(paths[i] for i in (~ok[: len(paths)]).nonzero().flatten().tolist())
    training = {"recipe": config.to_dict(), "solver": "lbfgs", "objective": loss, "completed": True,
                "history": [dataclasses.asdict(metrics)], "bad_images": len(bad)}
    temperature = None
    if heldout is not None:  # every rank fits the same temperature, so every rank's config agrees
        from imgsent.calibration import calibrate

        fitted = calibrate(*heldout[:2], source=heldout[2])
        temperature = fitted.temperature
        training["calibration"] = fitted.to_dict()
    model_dir = finalize.export_run(model, out_dir, env, training, temperature=temperature)
    return TrainResult(model_dir, (metrics,), 0 if val_acc is not None else None, 1, True, None, None, bad)
