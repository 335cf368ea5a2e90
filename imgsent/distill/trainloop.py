"""Building blocks of student training: deterministic data order, decoding, distributed setup, losses.

Everything random in the data path is a pure function of ``(seed, epoch)`` (the order) or
``(seed, epoch, row index)`` (augmentation), so any step of any epoch can be rebuilt exactly,
by any number of worker processes, after a restart.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from imgsent.config import PreprocessConfig
from imgsent.errors import ImgsentError
from imgsent.images import load_image
from imgsent.predictor import resolve_device
from imgsent.transforms import preprocess

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``(row indices [n], uint8 pixels [k, 3, S, S], decoded mask [n])``; pixel rows follow the True entries."""


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
    generator = torch.Generator().manual_seed(_mix(seed, epoch))
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


def _mix(*parts: int) -> int:
    """A 63-bit seed that is a pure function of the integers given."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


# ----------------------------------------------------------------------------- decoding


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


class RowDataset(Dataset):
    """Decodes row ``index`` of ``paths`` (with seeded augmentation) to uint8, or ``None`` if it fails."""

    def __init__(
        self,
        paths: list[str],
        cfg: PreprocessConfig,
        *,
        seed: int,
        epoch: int,
        augment: bool,
        scale: tuple[float, float] = (0.35, 1.0),
    ) -> None:
        self.paths, self.cfg, self.seed, self.epoch = paths, cfg, seed, epoch
        self.augment, self.scale = augment, scale

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None]:
        try:
            draft = None if self.augment else (self.cfg.image_size, self.cfg.image_size)
            image = load_image(self.paths[index], draft_size=draft)
            if self.augment:
                generator = torch.Generator().manual_seed(_mix(self.seed, self.epoch, index))
                image = random_resized_crop_flip(image, generator, scale=self.scale)
            return index, preprocess(image, self.cfg)
        except ImgsentError:
            return index, None
        except Exception:  # a decoder bug on one file must not end the run; the row is counted as bad
            return index, None


def collate_rows(items: list[tuple[int, torch.Tensor | None]]) -> Batch:
    """Stack decoded rows; failed rows stay in ``indices`` with ``ok`` False."""
    indices = torch.tensor([i for i, _ in items], dtype=torch.long)
    ok = torch.tensor([t is not None for _, t in items], dtype=torch.bool)
    tensors = [t for _, t in items if t is not None]
    pixels = torch.stack(tensors) if tensors else torch.empty(0, dtype=torch.uint8)
    return indices, pixels, ok


def make_loader(dataset: RowDataset, batches: list[list[int]], *, workers: int, pin_memory: bool) -> DataLoader:
    """A DataLoader over fixed batches; its own generator keeps the global RNG untouched."""
    return DataLoader(
        dataset,
        batch_sampler=batches,  # type: ignore[arg-type]
        num_workers=workers,
        collate_fn=collate_rows,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(0),
        worker_init_fn=_worker_init if workers > 0 else None,
        multiprocessing_context=_mp_context() if workers > 0 else None,
    )


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def _mp_context() -> str | None:
    forkable = sys.platform.startswith("linux") and not (torch.cuda.is_available() and torch.cuda.is_initialized())
    return "fork" if forkable else "spawn"


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
