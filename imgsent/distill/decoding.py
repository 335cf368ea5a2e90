"""Decoding of training rows: a dataset of uint8 pixels (failed images become ``None``) and its loader."""

from __future__ import annotations

import sys

import torch
from torch.utils.data import DataLoader, Dataset

from imgsent.config import PreprocessConfig
from imgsent.distill.sampling import mix_seed, random_resized_crop_flip
from imgsent.errors import ImgsentError
from imgsent.images import load_image
from imgsent.transforms import preprocess

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``(row indices [n], uint8 pixels [k, 3, S, S], decoded mask [n])``; pixel rows follow the True entries."""


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
                generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, index))
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
