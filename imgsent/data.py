"""Decoding and loading, for prediction and for training: one dataset, one collate, one loader.

Every image imgsent reads goes through :class:`DecodeDataset` in DataLoader worker processes,
built by :func:`make_loader`, the only place in the package that constructs a ``DataLoader``.
Each input becomes pixels through :func:`imgsent.transforms.load_pixels`, the one decoding path.

* **Prediction** (:func:`iter_batches`) streams any iterable: the sources are cut into batches
  lazily in the main process and handed to the workers, so memory stays bounded
  (at most ``workers * prefetch`` batches in flight) and results come back in input order.
* **Training** (:func:`iter_row_batches`) reads rows of a path list by index, in batches fixed
  in advance, with optional seeded augmentation.

A source that cannot be decoded becomes an error entry; it never stops the stream.

Workers start with ``fork`` on Linux while CUDA is not initialised in this process (fast,
and the parent's imports are shared copy-on-write), and with ``spawn`` everywhere else:
forking a process that has initialised CUDA breaks CUDA in the children.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from imgsent.config import PreprocessConfig
from imgsent.errors import ImgsentError
from imgsent.images import DEFAULT_MAX_PIXELS, ImageSource, describe_source
from imgsent.runtime import worker_init
from imgsent.transforms import load_pixels

_Item = tuple[int, str, torch.Tensor | None, str | None, tuple[int, int] | None]
RowBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``(row indices [n], float32 pixels [k, 3, S, S] in [0, 255], decoded mask [n])``; pixel rows follow the True entries."""


@dataclass
class DecodedBatch:
    """One batch of decoded inputs.

    Attributes:
        sources: Printable description of every input in the batch, in order.
        pixels: float32 tensor [n_ok, 3, S, S], values in [0, 255], for the inputs that decoded
            (see :func:`imgsent.transforms.load_pixels`).
        ok: For every input, whether it decoded; ``pixels`` rows follow the True entries.
        errors: For every input, ``None`` or the reason it failed.
        indices: For every input, its row index (training) or its position in the stream (prediction).
        sizes: For every input, ``(width, height)`` as displayed, or ``None`` if it failed.
    """

    sources: list[str]
    pixels: torch.Tensor
    ok: list[bool]
    errors: list[str | None]
    indices: torch.Tensor
    sizes: list[tuple[int, int] | None]

    @property
    def mask(self) -> torch.Tensor:
        """``ok`` as a bool tensor [n]."""
        return torch.tensor(self.ok, dtype=torch.bool)

    def pin_memory(self) -> DecodedBatch:
        self.pixels = self.pixels.pin_memory()
        return self


@dataclass(frozen=True)
class Augment:
    """Training augmentation: a random resized crop (area fraction in ``scale``) and a horizontal flip.

    The randomness is a pure function of ``(seed, epoch, row index)``, so any step of any epoch
    decodes to the same pixels in any worker, after any restart.
    """

    seed: int
    epoch: int
    scale: tuple[float, float] = (0.35, 1.0)


class DecodeDataset(Dataset):
    """Decodes one input to float32 pixels [3, S, S] (:func:`~imgsent.transforms.load_pixels`), or to an error message.

    With ``rows`` the sampler hands it row indices; without, it hands it ``(position, source)``
    pairs straight from a stream.
    """

    def __init__(
        self,
        cfg: PreprocessConfig,
        *,
        rows: Sequence[ImageSource] | None = None,
        augment: Augment | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.cfg, self.rows, self.augment, self.max_pixels = cfg, rows, augment, max_pixels

    def __len__(self) -> int:
        if self.rows is None:
            raise TypeError("a streaming DecodeDataset is fed by its batch sampler and has no length")
        return len(self.rows)

    def __getitem__(self, key: int | tuple[int, Any]) -> _Item:
        index, source = (key, self.rows[key]) if self.rows is not None else key  # type: ignore[index,misc]
        name = describe_source(source)
        crop = None
        if self.augment is not None:
            generator = torch.Generator().manual_seed(mix_seed(self.augment.seed, self.augment.epoch, index))
            crop = functools.partial(random_resized_crop_flip, generator=generator, scale=self.augment.scale)
        pixels, size, error = decode_or_error(source, self.cfg, self.max_pixels, crop=crop)
        return index, name, pixels, error, size


def decode_or_error(
    source: Any, cfg: PreprocessConfig, max_pixels: int, *, crop: Callable[[Image.Image], Image.Image] | None = None
) -> tuple[torch.Tensor | None, tuple[int, int] | None, str | None]:
    """:func:`~imgsent.transforms.load_pixels`, with any failure turned into its message: ``(pixels, size, error)``."""
    try:
        pixels, size = load_pixels(source, cfg, max_pixels=max_pixels, crop=crop)
        return pixels, size, None
    except ImgsentError as exc:
        return None, None, str(exc)
    except Exception as exc:  # a decoder bug must not end a million-image run
        return None, None, f"{describe_source(source)}: unexpected {type(exc).__name__}: {exc}"


def collate(items: list[_Item]) -> DecodedBatch:
    """Stack the decoded inputs of one batch; failed inputs keep their place with ``ok`` False."""
    tensors = [t for _, _, t, _, _ in items if t is not None]
    return DecodedBatch(
        sources=[name for _, name, _, _, _ in items],
        pixels=torch.stack(tensors) if tensors else torch.empty(0),
        ok=[t is not None for _, _, t, _, _ in items],
        errors=[err for _, _, _, err, _ in items],
        indices=torch.tensor([i for i, _, _, _, _ in items], dtype=torch.long),
        sizes=[size for _, _, _, _, size in items],
    )


def make_loader(
    dataset: DecodeDataset | Any,
    batches: Iterable[list[Any]],
    *,
    workers: int,
    pin_memory: bool = False,
    prefetch: int = 2,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> DataLoader:
    """The DataLoader of ``dataset`` (anything indexable by the keys) over the given batches of keys.

    Its own seeded generator leaves the global RNG untouched, so loading never changes
    what a seeded run draws elsewhere. ``collate_fn`` defaults to :func:`collate`.
    """
    return DataLoader(
        dataset,
        batch_sampler=batches,  # type: ignore[arg-type]
        num_workers=workers,
        collate_fn=collate if collate_fn is None else collate_fn,
        pin_memory=pin_memory,
        prefetch_factor=prefetch if workers > 0 else None,
        generator=torch.Generator().manual_seed(0),
        worker_init_fn=worker_init if workers > 0 else None,
        multiprocessing_context=mp_context() if workers > 0 else None,
    )


def mp_context() -> str:
    """How worker processes start: ``fork`` on Linux unless CUDA is initialised here, else ``spawn``."""
    cuda_live = torch.cuda.is_available() and torch.cuda.is_initialized()
    return "fork" if sys.platform.startswith("linux") and not cuda_live else "spawn"


class StreamBatches:
    """Lazily cut an iterable of sources into lists of ``(position, source)``; the loader pulls on demand.

    The batch sampler of every streaming loader (:func:`iter_batches` and the GPU decoder's byte reader).
    """

    def __init__(self, sources: Iterable[Any], batch_size: int) -> None:
        self._sources = sources
        self._batch_size = batch_size

    def __iter__(self) -> Iterator[list[tuple[int, Any]]]:
        iterator = enumerate(self._sources)
        while batch := list(islice(iterator, self._batch_size)):
            yield batch


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

    Example:
        >>> batch = next(iter_batches([b"not an image"], PreprocessConfig(image_size=32), batch_size=8, workers=0))
        >>> batch.ok, batch.pixels.shape
        ([False], torch.Size([0]))
    """
    dataset = DecodeDataset(cfg, max_pixels=max_pixels)
    yield from make_loader(dataset, StreamBatches(sources, batch_size), workers=workers, pin_memory=pin_memory,
                           prefetch=prefetch)


def iter_row_batches(
    paths: Sequence[str],
    cfg: PreprocessConfig,
    batches: list[list[int]],
    *,
    workers: int,
    augment: Augment | None = None,
    pin_memory: bool = False,
) -> Iterator[RowBatch]:
    """Decode fixed batches of row indices of ``paths``, for training and feature extraction.

    Yields:
        ``(row indices [n], float32 pixels [k, 3, S, S], decoded mask [n])`` per batch; pixel rows
        follow the True entries of the mask.
    """
    dataset = DecodeDataset(cfg, rows=paths, augment=augment)
    for batch in make_loader(dataset, batches, workers=workers, pin_memory=pin_memory):
        yield batch.indices, batch.pixels, batch.mask


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
