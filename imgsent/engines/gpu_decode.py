"""Batched JPEG decoding on the GPU (nvJPEG through ``torchvision.io.decode_jpeg``), with CPU fallback.

Worker processes only read file bytes and check the JPEG header and pixel count (no decoding);
the main process decodes a whole batch in one ``decode_jpeg(..., device="cuda")`` call and
resizes on the GPU. Any input the GPU cannot take (not a JPEG file, CMYK or progressive
oddities, a batch call that fails) falls back, file by file, to the CPU decoder, so one bad
file still becomes one error row.

Only ``resize_mode="squash"`` is resized on the GPU (bicubic/bilinear with antialiasing, as
PIL does); other modes keep CPU decoding. The GPU decodes every JPEG at full scale and resizes
in one step, so its pixels differ slightly from :func:`imgsent.transforms.load_pixels` (no draft
decoding, no ``reducing_gap``, nvJPEG's own IDCT); the CPU fallback is ``load_pixels`` itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from imgsent.config import PreprocessConfig
from imgsent.data import DecodedBatch, StreamBatches, decode_or_error, iter_batches, make_loader
from imgsent.images import DEFAULT_MAX_PIXELS, describe_source

_JPEG_SOI = b"\xff\xd8\xff"
_GPU_FILTERS = {"bilinear": "bilinear", "bicubic": "bicubic"}
Decoder = Callable[[list[torch.Tensor]], list[torch.Tensor]]


def gpu_decode_supported(cfg: PreprocessConfig, device: torch.device) -> bool:
    """Whether the GPU path applies: a CUDA device, ``squash`` resizing with antialiasing (imgsent's own
    models; the TensorFlow-faithful resize of the paper's models stays on the CPU) and a bilinear/bicubic filter."""
    return (device.type == "cuda" and cfg.resize_mode == "squash" and cfg.resize_antialias
            and cfg.interpolation in _GPU_FILTERS)


def read_jpeg_bytes(source: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor | None:
    """The file's bytes as a uint8 tensor if ``source`` is a path to a baseline-decodable JPEG, else ``None``.

    Reads the header only to check the pixel count; ``None`` sends the source to the CPU decoder,
    which produces the proper error for unreadable files.
    """
    if not isinstance(source, (str, os.PathLike)):
        return None
    try:
        data = Path(source).read_bytes()
    except OSError:
        return None
    if not data.startswith(_JPEG_SOI):
        return None
    from PIL import Image

    try:
        import io

        with Image.open(io.BytesIO(data)) as image:
            if image.mode not in ("RGB", "L") or image.width * image.height > max_pixels:
                return None
    except Exception:  # PIL cannot parse the header: let the CPU decoder report it
        return None
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _nvjpeg(device: torch.device) -> Decoder:
    import warnings

    with warnings.catch_warnings():  # torchvision 0.29 flags its image I/O as deprecated in favour of torchcodec
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_jpeg

    def decode(data: list[torch.Tensor]) -> list[torch.Tensor]:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True)

    return decode


def resize_on_device(image: torch.Tensor, cfg: PreprocessConfig) -> torch.Tensor:
    """uint8 ``[3, H, W]`` -> float32 ``[3, S, S]`` of whole numbers in [0, 255] on the image's device
    (antialiased squash, rounded as Pillow rounds)."""
    size = cfg.image_size
    out = F.interpolate(image[None].float(), size=(size, size), mode=_GPU_FILTERS[cfg.interpolation], antialias=True, align_corners=False)
    return out[0].round_().clamp_(0, 255)


def decode_batch(
    sources: list[Any], data: list[torch.Tensor | None], cfg: PreprocessConfig, device: torch.device, *,
    decoder: Decoder, max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DecodedBatch:
    """Decode one batch: JPEG bytes through ``decoder`` in one call, everything else on the CPU.

    If the batched call fails, each file is retried alone on the decoder, then on the CPU.
    """
    pixels: list[torch.Tensor | None] = [None] * len(sources)
    errors: list[str | None] = [None] * len(sources)
    gpu_idx = [i for i, d in enumerate(data) if d is not None]
    decoded: dict[int, torch.Tensor] = {}
    if gpu_idx:
        try:
            decoded = dict(zip(gpu_idx, decoder([data[i] for i in gpu_idx])))  # type: ignore[misc]
        except Exception:  # one bad file fails the whole call: retry file by file
            for i in gpu_idx:
                try:
                    decoded[i] = decoder([data[i]])[0]  # type: ignore[list-item]
                except Exception:
                    pass
    sizes: list[tuple[int, int] | None] = [None] * len(sources)
    for i, source in enumerate(sources):
        if i in decoded:
            pixels[i] = resize_on_device(decoded[i].to(device), cfg)
            sizes[i] = (int(decoded[i].shape[-1]), int(decoded[i].shape[-2]))
        else:
            tensor, sizes[i], errors[i] = decode_or_error(source, cfg, max_pixels)
            pixels[i] = None if tensor is None else tensor.to(device)
    ok = [p is not None for p in pixels]
    stacked = [p for p in pixels if p is not None]
    batch = torch.stack(stacked) if stacked else torch.empty(0, device=device)
    positions = torch.arange(len(sources), dtype=torch.long)  # within the batch; prediction keeps order itself
    return DecodedBatch([describe_source(s) for s in sources], batch, ok, errors, positions, sizes)


def iter_gpu_batches(
    sources: Iterable[Any], cfg: PreprocessConfig, *, batch_size: int, workers: int, device: torch.device,
    max_pixels: int = DEFAULT_MAX_PIXELS, decoder: Decoder | None = None,
) -> Iterator[DecodedBatch]:
    """Like :func:`imgsent.data.iter_batches`, but JPEG files are decoded and resized on ``device``.

    Workers read bytes in the background (through the same ordered, bounded DataLoader); the
    decode runs here. ``decoder`` defaults to nvJPEG on ``device``.
    """
    decode = decoder or _nvjpeg(device)
    loader = make_loader(_ByteReader(max_pixels), StreamBatches(sources, batch_size), workers=workers, collate_fn=list)
    for chunk in loader:
        batch_sources, batch_data = zip(*chunk) if chunk else ((), ())
        yield decode_batch(list(batch_sources), list(batch_data), cfg, device, decoder=decode, max_pixels=max_pixels)


def iter_device_batches(
    sources: Iterable[Any], cfg: PreprocessConfig, *, batch_size: int, workers: int, device: torch.device,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[DecodedBatch]:
    """The decoded batches for a model on ``device``: the one place that picks the decoding path.

    JPEG files go through nvJPEG on CUDA when the preprocessing allows it (:func:`iter_gpu_batches`,
    per-file CPU fallback); everything else through :func:`imgsent.data.iter_batches`, with pinned
    memory on CUDA. Prediction and dedup's features both read their pixels from here.
    """
    if gpu_decode_supported(cfg, device):
        return iter_gpu_batches(sources, cfg, batch_size=batch_size, workers=workers, device=device, max_pixels=max_pixels)
    return iter_batches(sources, cfg, batch_size=batch_size, workers=workers, pin_memory=device.type == "cuda",
                        max_pixels=max_pixels)


class _ByteReader:
    """Picklable reader for the DataLoader workers: ``(position, source)`` -> ``(source, JPEG bytes or None)``."""

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = max_pixels

    def __getitem__(self, key: tuple[int, Any]) -> tuple[Any, torch.Tensor | None]:
        _, source = key
        return source, read_jpeg_bytes(source, self.max_pixels)


__all__ = ["decode_batch", "gpu_decode_supported", "iter_device_batches", "iter_gpu_batches", "read_jpeg_bytes"]
