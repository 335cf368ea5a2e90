"""Streaming, batched decoding in DataLoader worker processes.

The input iterable is consumed lazily in the main process and cut into batches of
``(position, source)`` pairs. Each batch travels to a worker, which decodes and
resizes every image to a uint8 tensor. Results come back in input order, with at most
``workers * prefetch`` batches in flight, so memory stays bounded for any input size.
A source that cannot be decoded becomes an error entry; it never stops the stream.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from imgsent.config import PreprocessConfig
from imgsent.errors import ImgsentError
from imgsent.images import DEFAULT_MAX_PIXELS, describe_source, load_image
from imgsent.transforms import preprocess


@dataclass
class DecodedBatch:
    """One batch of decoded inputs.

    Attributes:
        sources: Printable description of every input in the batch, in order.
        pixels: uint8 tensor [n_ok, 3, S, S] for the inputs that decoded.
        ok: For every input, whether it decoded; ``pixels`` rows follow the True entries.
        errors: For every input, ``None`` or the reason it failed.
    """

    sources: list[str]
    pixels: torch.Tensor
    ok: list[bool]
    errors: list[str | None]

    def pin_memory(self) -> DecodedBatch:
        self.pixels = self.pixels.pin_memory()
        return self


class _SourceBatches:
    """Lazily cut an iterable of sources into lists; the DataLoader pulls from it on demand."""

    def __init__(self, sources: Iterable[Any], batch_size: int) -> None:
        self._sources = sources
        self._batch_size = batch_size

    def __iter__(self) -> Iterator[list[Any]]:
        iterator = iter(self._sources)
        while batch := list(islice(iterator, self._batch_size)):
            yield batch


class _DecodeDataset(Dataset):
    """Decodes the sources handed to it by the batch sampler (no index lookup)."""

    def __init__(self, cfg: PreprocessConfig, max_pixels: int) -> None:
        self.cfg = cfg
        self.max_pixels = max_pixels

    def __getitem__(self, source: Any) -> tuple[str, torch.Tensor | None, str | None]:
        name = describe_source(source)
        try:
            draft = (self.cfg.image_size, self.cfg.image_size) if self.cfg.jpeg_draft else None
            image = load_image(source, max_pixels=self.max_pixels, draft_size=draft)
            return name, preprocess(image, self.cfg), None
        except ImgsentError as exc:
            return name, None, str(exc)
        except Exception as exc:  # a decoder bug must not end a million-image run
            return name, None, f"{name}: unexpected {type(exc).__name__}: {exc}"

    def __len__(self) -> int:  # pragma: no cover - sources are fed by the sampler
        raise TypeError("_DecodeDataset is fed by a batch sampler and has no length")


def _collate(items: list[tuple[str, torch.Tensor | None, str | None]]) -> DecodedBatch:
    sources = [name for name, _, _ in items]
    tensors = [t for _, t, _ in items if t is not None]
    ok = [t is not None for _, t, _ in items]
    errors = [err for _, _, err in items]
    pixels = torch.stack(tensors) if tensors else torch.empty(0, dtype=torch.uint8)
    return DecodedBatch(sources, pixels, ok, errors)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def default_workers(device: torch.device) -> int:
    """Decoding workers when the caller does not say: enough to keep the device busy."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if device.type == "cuda":
        return max(1, min(16, cores - 1))
    return max(1, min(4, cores // 2))


def iter_batches(
    sources: Iterable[Any],
    cfg: PreprocessConfig,
    *,
    batch_size: int,
    workers: int,
    prefetch: int = 2,
    pin_memory: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[DecodedBatch]:
    """Decode ``sources`` in batches, in order, with ``workers`` background processes.

    Args:
        sources: Paths, bytes, PIL images, arrays or tensors; any iterable, consumed lazily.
        cfg: Preprocessing of the model.
        batch_size: Inputs per batch.
        workers: Decoding processes; 0 decodes in the calling process.
        prefetch: Batches each worker prepares ahead.
        pin_memory: Pin batches for fast, non-blocking copies to CUDA.
        max_pixels: Refuse images with more pixels than this (decompression bombs).

    Yields:
        :class:`DecodedBatch` records, one per ``batch_size`` inputs.
    """
    loader = DataLoader(
        _DecodeDataset(cfg, max_pixels),
        batch_sampler=_SourceBatches(sources, batch_size),  # type: ignore[arg-type]
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=pin_memory,
        prefetch_factor=prefetch if workers > 0 else None,
        worker_init_fn=_worker_init if workers > 0 else None,
        multiprocessing_context=_mp_context() if workers > 0 else None,
    )
    yield from loader


def _mp_context() -> str | None:
    return "fork" if sys.platform.startswith("linux") and _fork_safe() else None


def _fork_safe() -> bool:
    # Forking after CUDA is initialised breaks CUDA in the children; use the platform default then.
    return not (torch.cuda.is_available() and torch.cuda.is_initialized())
