"""Sampling: which rows each step of each epoch sees, on each rank, and the seeded augmentation.

Everything random in the data path is a pure function of ``(seed, epoch)`` (the order) or
``(seed, epoch, row index)`` (augmentation), so any step of any epoch can be rebuilt exactly,
by any number of worker processes, after a restart.
"""

from __future__ import annotations

import hashlib
import math

import torch
from PIL import Image

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


def mix_seed(*parts: int) -> int:
    """A 63-bit seed that is a pure function of the integers given."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def random_resized_crop_flip(
    image: Image.Image, generator: torch.Generator, *, scale: tuple[float, float], ratio: tuple[float, float] = (3 / 4, 4 / 3)
) -> Image.Image:
    """Crop a random area fraction in ``scale`` with aspect ratio in ``ratio``, then flip with p=0.5."""
    width, height = image.size
    area = width * height
    box = (0, 0, width, height)
    for _ in range(10):
        u = torch.rand(3, generator=generator, dtype=torch.float64).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[1])
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            v = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
            left, top = int(v[0] * (width - w + 1)), int(v[1] * (height - h + 1))
            box = (left, top, left + w, top + h)
            break
    image = image.crop(box)
    if torch.rand(1, generator=generator).item() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image
