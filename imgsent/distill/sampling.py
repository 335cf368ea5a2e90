"""Sampling: which rows each step of each epoch sees, on each rank.

The seeded augmentation and the decoding live in :mod:`imgsent.data`.

Everything random in the data path is a pure function of ``(seed, epoch)`` (the order) or
``(seed, epoch, row index)`` (augmentation), so any step of any epoch can be rebuilt exactly,
by any number of worker processes, after a restart.
"""

from __future__ import annotations

import math

import torch

from imgsent.data import mix_seed
from imgsent.distill.distributed import DistEnv


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
