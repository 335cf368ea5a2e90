"""Train the image student on the teacher's labels: the paper's recipe, resumable and data-parallel.

Recipe defaults (paper, see :class:`~imgsent.distill.records.TrainConfig`): hard labels with label
smoothing 0.2, balanced class weights, RAdam at lr 1e-4, global batch 32, one epoch with the
backbone frozen then 5 epochs fully trained, no augmentation.

Multi-process: launch ``torchrun --nproc_per_node N -m imgsent distill train ...`` (or call
:func:`train_student` under torchrun). ``batch_size`` is the *global* batch.

Exact resumption rests on four facts:

* the rows of step ``s`` of epoch ``e`` are a pure function of ``(seed, e, s)``
  (:func:`~imgsent.distill.sampling.epoch_order`), and a resumed epoch skips its finished steps;
* augmentation draws from a generator seeded by ``(seed, epoch, row index)``, so worker count and
  scheduling do not matter;
* the global torch RNG (dropout) is used only by the model and is saved and restored per rank;
  DataLoaders get their own generator so they never draw from it;
* model, optimizer state and all counters are saved losslessly (float32 safetensors, JSON floats).

Data parallelism: during the frozen-backbone phase only the head is wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel` (the backbone runs in eval mode under
``no_grad``); DDP is rebuilt around the whole network when the backbone is unfrozen, so it never
sees parameters without gradients. Gradients are averaged over ranks and every rank's loss is a
mean over the same local batch size. BatchNorm layers stay in eval mode in every phase (running
statistics frozen as initialised, scale and shift trained): per-rank batch statistics would
otherwise make N processes train a different model from one. So a step equals a single-process
step on the global batch, for every student, up to float summation order. Piecewise-linear
activations (ReLU6) can turn that rounding into a different gradient where a pre-activation
lies within rounding of a kink, so compare runs at the same intra-op thread count.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from imgsent.config import WEIGHTS_NAME
from imgsent.data import Augment, RowBatch, iter_row_batches
from imgsent.distill import checkpoints as ckpt
from imgsent.distill import distributed, finalize, sampling
from imgsent.distill.distributed import DistEnv
from imgsent.distill.losses import distill_loss
from imgsent.distill.probe import run_probe
from imgsent.distill.records import (
    RESUME_FREE,
    EpochMetrics,
    StepProgress,
    TrainConfig,
    TrainResult,
    TrainRow,
    coerce_rows,
    rows_fingerprint,
)
from imgsent.errors import InvalidConfigError
from imgsent.runtime import default_workers
from imgsent.transforms import normalize

OnStep = Callable[[StepProgress], None]
OnEpoch = Callable[[EpochMetrics], None]


def freeze_batchnorm_statistics(net: nn.Module) -> None:
    """Put every BatchNorm layer of ``net`` in eval mode: running statistics are used and kept as they are.

    Scale and shift still train. With statistics from the (global) running averages rather than
    each rank's local batch, N data-parallel processes compute what one process computes.
    """
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


class Trainer:
    """One training run on one rank; see the module docstring."""

    def __init__(
        self,
        model: Any,
        train: list[TrainRow],
        val: list[TrainRow],
        config: TrainConfig,
        out_dir: Path,
        env: DistEnv,
        *,
        on_step: OnStep | None = None,
        on_epoch: OnEpoch | None = None,
    ) -> None:
        if config.batch_size % env.world_size:
            raise InvalidConfigError(
                f"batch_size={config.batch_size} is the global batch and must be divisible by the number of "
                f"processes ({env.world_size}); use e.g. batch_size={env.world_size * max(1, config.batch_size // env.world_size)}."
            )
        self.model, self.net, self.config, self.out_dir, self.env = model, model.net.to(env.device), config, out_dir, env
        self.train, self.val = train, val
        self.preprocess = model.config.preprocess
        self.on_step = on_step if env.is_main else None
        self.on_epoch = on_epoch if env.is_main else None
        self.labels = torch.tensor([r.label for r in train], dtype=torch.long)
        self.val_labels = torch.tensor([r.label for r in val], dtype=torch.long)
        has_probs = all(r.probs is not None for r in train)
        self.probs = torch.tensor([r.probs for r in train], dtype=torch.float32) if has_probs else None
        weights = finalize.class_weight_tensor(config.class_weights, self.labels)
        self.class_weights = weights.to(env.device) if weights is not None else None
        self.steps_per_epoch = sampling.steps_per_epoch(len(train), config.batch_size)
        self.total_epochs = config.freeze_backbone_epochs + config.epochs
        self.workers = config.num_workers if config.num_workers is not None else default_workers(env.device)
        self.amp = config.amp and env.device.type == "cuda"
        self.optimizer = torch.optim.RAdam(self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.bad_train = torch.zeros(len(train), dtype=torch.uint8)
        self.bad_val = torch.zeros(len(val), dtype=torch.uint8)
        self.fingerprint = rows_fingerprint(train, val)
        self.step = self.epoch = self.step_in_epoch = 0
        self.loss_sum, self.loss_steps = 0.0, 0
        self.history: list[EpochMetrics] = []
        self.best: dict[str, Any] | None = None
        self.last_checkpoint: Path | None = None
        self.ddp: torch.nn.Module | None = None
        self.ddp_frozen = False

    # ------------------------------------------------------------------ run

    def run(self, *, resume: bool) -> TrainResult:
        """Train to the end (or to ``max_steps``), export, and return the result."""
        latest = ckpt.latest_checkpoint(self.out_dir)
        resumed_from = None
        if latest is not None and not resume:
            raise InvalidConfigError(
                f"{self.out_dir} already holds training checkpoints (newest: {latest.name}). "
                "Pass resume=True to continue that run, or choose a new out_dir."
            )
        if resume and latest is not None:
            self._restore(latest)
            resumed_from = latest
        else:
            torch.manual_seed(self.config.seed + self.env.rank)
        limit = self.config.max_steps if self.config.max_steps is not None else self.steps_per_epoch * self.total_epochs
        while self.epoch < self.total_epochs and self.step < limit:
            self._run_epoch(limit)
        completed = self.epoch >= self.total_epochs
        return self._finish(resumed_from, completed)

    def _run_epoch(self, limit: int) -> None:
        frozen = self.epoch < self.config.freeze_backbone_epochs
        self._set_phase(frozen)
        order = sampling.epoch_order(len(self.train), seed=self.config.seed, epoch=self.epoch, global_batch=self.config.batch_size)
        batches = sampling.rank_batches(order, start_step=self.step_in_epoch, global_batch=self.config.batch_size, env=self.env)
        augment = Augment(self.config.seed, self.epoch, self.config.augment_scale) if self.config.augment else None
        loader = iter_row_batches([r.path for r in self.train], self.preprocess, batches, workers=self.workers,
                                  augment=augment, pin_memory=self.env.device.type == "cuda")
        every = self.config.checkpoint_every
        for batch in loader:
            loss = self._train_step(batch, frozen)
            self.step += 1
            self.step_in_epoch += 1
            self.loss_sum += loss
            self.loss_steps += 1
            if self.on_step is not None:
                self.on_step(StepProgress(self.step, self.steps_per_epoch * self.total_epochs, self.epoch, self.total_epochs,
                                          "frozen" if frozen else "full", loss))
            if self.step_in_epoch == self.steps_per_epoch:
                break
            if self.step >= limit or (every and self.step % every == 0):
                self._checkpoint()
            if self.step >= limit:
                return
        del loader
        self._end_epoch("frozen" if frozen else "full")

    def _set_phase(self, frozen: bool) -> None:
        """Freeze or unfreeze the backbone and (re)wrap the trainable part in DDP."""
        self.net.train()
        self.net.backbone.requires_grad_(not frozen)
        self.net.head.requires_grad_(True)
        if frozen:
            self.net.backbone.eval()
        freeze_batchnorm_statistics(self.net)
        trainable = self.net.head if frozen else self.net
        if self.ddp is not None and self.ddp_frozen == frozen:
            return
        self.ddp, self.ddp_frozen = None, frozen  # drop the old wrapper (and its gradient hooks) first
        if self.env.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.env.device.index] if self.env.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(trainable, device_ids=ids)
        else:
            self.ddp = trainable

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else contextlib.nullcontext()

    def _train_step(self, batch: RowBatch, frozen: bool) -> float:
        indices, pixels, ok = batch
        self.bad_train[indices[~ok]] = 1
        good = indices[ok]
        empty = len(good) == 0
        if empty:  # every image of this local batch failed: a zero-weight dummy keeps the ranks in step
            size = self.preprocess.image_size
            pixels, good = torch.zeros(1, 3, size, size, dtype=torch.uint8), indices[:1]
        device = self.env.device
        x = normalize(pixels.to(device, non_blocking=True), self.preprocess)
        labels = self.labels[good].to(device)
        probs = self.probs[good].to(device) if self.probs is not None and self.config.targets == "soft" else None
        assert self.ddp is not None
        with self._autocast():
            if frozen:
                with torch.no_grad():
                    features = self.net.backbone(x)
                logits = self.ddp(features)
            else:
                logits = self.ddp(x)
        per = distill_loss(logits, labels, probs, targets=self.config.targets, label_smoothing=self.config.label_smoothing,
                              temperature=self.config.temperature, class_weights=self.class_weights)
        loss = per.sum() * 0.0 if empty else per.sum() / len(good)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        value = loss.detach().float()
        if self.env.distributed:
            value = distributed.all_reduce(self.env, value) / self.env.world_size
        return float(value.item())

    # ------------------------------------------------------------------ epochs and validation

    def _end_epoch(self, phase: str) -> None:
        val = self._validate()
        metrics = EpochMetrics(self.epoch, phase, self.step, self.loss_sum / max(1, self.loss_steps), *val)  # type: ignore[arg-type]
        self.history.append(metrics)
        if metrics.val_accuracy is not None and (self.best is None or metrics.val_accuracy > self.best["val_accuracy"]):
            self.best = {"epoch": self.epoch, "val_accuracy": metrics.val_accuracy}
            if self.env.is_main and self.config.keep_model == "best":
                self.model.save_pretrained(self.out_dir / "best")
        if self.on_epoch is not None:
            self.on_epoch(metrics)
        self.epoch += 1
        self.step_in_epoch = 0
        self.loss_sum, self.loss_steps = 0.0, 0
        self._checkpoint()

    @torch.no_grad()
    def _validate(self) -> tuple[float | None, float | None, float | None]:
        if not self.val:
            return None, None, None
        self.net.eval()
        mine = list(range(self.env.rank, len(self.val), self.env.world_size))
        size = max(1, self.config.batch_size // self.env.world_size)
        batches = [mine[i : i + size] for i in range(0, len(mine), size)]
        sums = torch.zeros(8, dtype=torch.float64)
        for indices, pixels, ok in iter_row_batches([r.path for r in self.val], self.preprocess, batches,
                                                    workers=self.workers):
            self.bad_val[indices[~ok]] = 1
            if not ok.any():
                continue
            with self._autocast():
                logits = self.net(normalize(pixels.to(self.env.device), self.preprocess)).float()
            sums += finalize.validation_sums(logits, self.val_labels[indices[ok]])
        sums = distributed.all_reduce(self.env, sums)
        self.net.train()
        return finalize.validation_metrics(sums)

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint(self) -> None:
        """All ranks: merge bad-image masks and RNG states; rank 0 writes the checkpoint."""
        self.bad_train = distributed.all_reduce(self.env, self.bad_train, "max")
        self.bad_val = distributed.all_reduce(self.env, self.bad_val, "max")
        tensors = {f"model.{k}": v for k, v in self.net.state_dict().items()}
        optim_tensors, optim_meta = ckpt.flatten_optimizer(self.optimizer.state_dict())
        tensors.update(optim_tensors)
        tensors.update(distributed.gather_rng_states(self.env))
        tensors["data.bad_train"], tensors["data.bad_val"] = self.bad_train, self.bad_val
        meta = {
            "step": self.step, "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "loss_sum": self.loss_sum, "loss_steps": self.loss_steps, "world_size": self.env.world_size,
            "train_config": self.config.to_dict(), "fingerprint": self.fingerprint,
            "history": [dataclasses.asdict(m) for m in self.history], "best": self.best, "optimizer": optim_meta,
        }
        if self.env.is_main:
            self.last_checkpoint = ckpt.save_checkpoint(self.out_dir, self.step, tensors, meta, keep=self.config.keep_checkpoints)
        if self.env.distributed:
            dist.barrier()

    def _restore(self, folder: Path) -> None:
        tensors, meta = ckpt.load_checkpoint(folder)
        if meta.get("fingerprint") != self.fingerprint:
            raise InvalidConfigError(f"{folder} was trained on different rows; resume with the same train/val rows or use a new out_dir.")
        saved = meta.get("train_config", {})
        current = self.config.to_dict()
        changed = sorted(k for k in current if k not in RESUME_FREE and saved.get(k) != current[k])
        if changed:
            detail = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
            raise InvalidConfigError(f"Cannot resume {folder} with a different recipe ({detail}); use the original settings or a new out_dir.")
        self.net.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
        self.optimizer.load_state_dict(ckpt.unflatten_optimizer(tensors, meta["optimizer"]))
        self.bad_train, self.bad_val = tensors["data.bad_train"].clone(), tensors["data.bad_val"].clone()
        distributed.restore_rng_states(self.env, tensors, self.config.seed)
        self.step, self.epoch, self.step_in_epoch = meta["step"], meta["epoch"], meta["step_in_epoch"]
        self.loss_sum, self.loss_steps = meta["loss_sum"], meta["loss_steps"]
        self.history = [EpochMetrics(**m) for m in meta["history"]]
        self.best = meta["best"]
        self.last_checkpoint = folder

    # ------------------------------------------------------------------ export

    def _finish(self, resumed_from: Path | None, completed: bool) -> TrainResult:
        best_dir = self.out_dir / "best"
        use_best = self.config.keep_model == "best" and self.best is not None and (best_dir / WEIGHTS_NAME).is_file()
        if use_best:
            from safetensors.torch import load_file

            self.net.load_state_dict(load_file(str(best_dir / WEIGHTS_NAME), device=str(self.env.device)))
        self.net.eval()
        training = {"recipe": self.config.to_dict(), "steps": self.step, "completed": completed,
                    "best_epoch": self.best["epoch"] if self.best else None, "exported": "best" if use_best else "last",
                    "history": [dataclasses.asdict(m) for m in self.history]}
        model_dir = finalize.export_run(self.model, self.out_dir, self.env, training)
        bad = tuple(self.train[i].path for i in self.bad_train.nonzero().flatten().tolist())
        bad += tuple(self.val[i].path for i in self.bad_val.nonzero().flatten().tolist())
        return TrainResult(model_dir, tuple(self.history), self.best["epoch"] if self.best else None, self.step,
                           completed, resumed_from, self.last_checkpoint, bad)


def train_student(
    model: Any,
    train_rows: Iterable[Any],
    val_rows: Iterable[Any],
    config: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    on_step: OnStep | None = None,
    on_epoch: OnEpoch | None = None,
) -> TrainResult:
    """Train ``model`` (a :class:`~imgsent.models.sentiment.SentimentModel`) in place and export it.

    Args:
        model: The student, already initialised (e.g. by :func:`~imgsent.distill.backbones.load_imagenet_backbone`).
        train_rows: Training rows (see :func:`coerce_rows`); images that fail to decode are skipped and reported.
        val_rows: Validation rows; may be empty when ``config.keep_model == "last"``.
        config: The recipe.
        out_dir: Run folder: ``checkpoints/``, ``best/``, ``model/`` (the export) and ``metrics.json``.
        resume: Continue from the newest checkpoint in ``out_dir`` (starts fresh when there is none).
        on_step: Called on rank 0 after every optimizer step with a :class:`~imgsent.distill.records.StepProgress`.
        on_epoch: Called on rank 0 after every epoch with its :class:`~imgsent.distill.records.EpochMetrics`.

    Returns:
        A :class:`TrainResult`. ``model`` holds the exported weights (best or last), in eval mode,
        on the training device. A fresh run seeds torch's global RNG with ``config.seed + rank``.

    Raises:
        InvalidConfigError: Bad rows, ``batch_size`` not divisible by the world size, ``out_dir`` holding
            checkpoints while ``resume`` is False, or a checkpoint from a different recipe or data.

    Example:
        >>> result = train_student(model, train, val, TrainConfig(epochs=1), "runs/vit-b16")  # doctest: +SKIP
        >>> result.history[-1].phase  # doctest: +SKIP
        'full'
    """
    train = coerce_rows(train_rows, where="train_rows")
    val = coerce_rows(val_rows, where="val_rows")
    if not train:
        raise InvalidConfigError("train_rows is empty; select some training images first.")
    if config.targets == "soft" and any(r.probs is None for r in train):
        raise InvalidConfigError("targets='soft' needs teacher probabilities ('probs') on every training row.")
    if config.keep_model == "best" and not val:
        raise InvalidConfigError("keep_model='best' needs validation rows; pass val_rows or use keep_model='last'.")
    env = distributed.setup_distributed(config.device)
    ok = False
    try:
        if config.solver == "lbfgs":
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            fine_tune = config.epochs > 0
            has_checkpoint = fine_tune and resume and any((out / "checkpoints").glob("step-*"))
            if not has_checkpoint:  # a resumed fine-tuning run restores its weights from the checkpoint
                probed = run_probe(model, train, val, config, out / ("probe" if fine_tune else ""), env)
                if not fine_tune:
                    ok = True
                    return probed
            config = dataclasses.replace(config, solver="sgd", freeze_backbone_epochs=0)
        result = Trainer(model, train, val, config, Path(out_dir), env, on_step=on_step, on_epoch=on_epoch).run(resume=resume)
        ok = True
        return result
    finally:
        distributed.teardown_distributed(env, clean=ok)
