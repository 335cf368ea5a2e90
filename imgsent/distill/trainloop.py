"""Building blocks of student training: deterministic data order, distributed setup, losses.

Decoding and augmentation live in :mod:`imgsent.data`.

Everything random in the data path is a pure function of ``(seed, epoch)`` (the order) or
``(seed, epoch, row index)`` (augmentation), so any step of any epoch can be rebuilt exactly,
by any number of worker processes, after a restart.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from imgsent.data import mix_seed
from imgsent.runtime import resolve_device

# ----------------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a (possibly single-process) run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str) -> DistEnv:
    """Read torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and join the process group if needed.

    Uses NCCL on CUDA and gloo on CPU. A group initialised by the caller is reused (and left open).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv(0, 1, 0, resolve_device(device), False)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo")
    return DistEnv(rank, world, local_rank, resolved, owns)


def teardown_distributed(env: DistEnv, *, clean: bool = True) -> None:
    """Leave the process group if :func:`setup_distributed` created it (waiting for the others if ``clean``)."""
    if env.owns_group and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce(env: DistEnv, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Sum (or max) a tensor over ranks; returns it on CPU. A no-op in a single process."""
    if not env.distributed:
        return tensor.cpu()
    work = tensor.to(env.device).clone()
    dist.all_reduce(work, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return work.cpu()


def gather_rng_states(env: DistEnv) -> dict[str, torch.Tensor]:
    """The torch (and CUDA) RNG state of every rank, as uint8 tensors keyed ``rng.<kind>.rank<r>``."""
    local = {"torch": torch.get_rng_state()}
    if env.device.type == "cuda":
        local["cuda"] = torch.cuda.get_rng_state(env.device)
    out: dict[str, torch.Tensor] = {}
    for kind, state in local.items():
        if env.distributed:
            parts = [torch.empty_like(state, device=env.device) for _ in range(env.world_size)]
            dist.all_gather(parts, state.to(env.device))
        else:
            parts = [state]
        for rank, part in enumerate(parts):
            out[f"rng.{kind}.rank{rank}"] = part.cpu()
    return out


def restore_rng_states(env: DistEnv, tensors: dict[str, torch.Tensor], seed: int) -> bool:
    """Restore this rank's RNG states; returns False (and reseeds) when the checkpoint lacks them."""
    state = tensors.get(f"rng.torch.rank{env.rank}")
    if state is None:
        torch.manual_seed(seed + env.rank)
        return False
    torch.set_rng_state(state)
    cuda = tensors.get(f"rng.cuda.rank{env.rank}")
    if cuda is not None and env.device.type == "cuda":
        torch.cuda.set_rng_state(cuda, env.device)
    return True


# ----------------------------------------------------------------------------- data order


def steps_per_epoch(n_rows: int, global_batch: int) -> int:
    """Optimizer steps in one epoch; the last batch is filled by wrapping around the permutation."""
    return max(1, math.ceil(n_rows / global_batch))


def epoch_order(n_rows: int, *, seed: int, epoch: int, global_batch: int) -> torch.Tensor:
    """Row indices of one epoch: a permutation seeded by ``(seed, epoch)``, padded to whole batches."""
    generator = torch.Generator().manual_seed(mix_seed(seed, epoch))
    order = torch.randperm(n_rows, generator=generator)
    total = steps_per_epoch(n_rows, global_batch) * global_batch
    if total > n_rows:
        order = torch.cat([order] * math.ceil(total / n_rows))[:total]
    return order


def rank_batches(order: torch.Tensor, *, start_step: int, global_batch: int, env: DistEnv) -> list[list[int]]:
    """This rank's slice of every global batch from ``start_step`` on."""
    local = global_batch // env.world_size
    batches = []
    for step in range(start_step, len(order) // global_batch):
        begin = step * global_batch + env.rank * local
        batches.append(order[begin : begin + local].tolist())
    return batches


# ----------------------------------------------------------------------------- losses


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
            raise ValueError("soft targets need teacher probabilities")
        teacher = torch.softmax(torch.log(probs.clamp_min(1e-8)) / temperature, dim=-1)
        log_student = torch.log_softmax(logits / temperature, dim=-1)
        per = (teacher * (torch.log(teacher.clamp_min(1e-12)) - log_student)).sum(-1) * temperature**2
    if class_weights is not None:
        per = per * class_weights[labels]
    return per
