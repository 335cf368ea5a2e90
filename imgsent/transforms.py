"""Preprocessing: any input -> the model's pixels, and a batch of pixels -> the normalised network input.

:func:`load_pixels` is the one path from an input (path, bytes, PIL image, array, tensor) to the
pixels the model sees. Every consumer uses it: the prediction and training datasets
(:mod:`imgsent.data`), the CPU fallback of the GPU decoder, explanations and video frames. It
follows the model's :class:`~imgsent.config.PreprocessConfig`, the one record of the decoding
policy:

1. decode with :func:`imgsent.images.decode_image`: JPEG draft decoding to ``image_size`` when
   ``jpeg_draft`` is on, EXIF orientation applied, first frame, alpha composited on white;
2. resize to ``image_size`` by ``resize_mode`` with ``interpolation``: Pillow with antialiasing
   and ``reducing_gap`` (then rounded to 8 bits, as Pillow returns them), or, with
   ``resize_antialias=False``, in float32 without antialiasing, as ``tf.image.resize``.

The result is always a float32 tensor ``[3, S, S]`` of values in [0, 255]. Normalisation with the
model's mean and std (:func:`normalize`) runs later, on whole batches, on the device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from imgsent.config import PreprocessConfig
from imgsent.images import DEFAULT_MAX_PIXELS, ImageSource, decode_image

LETTERBOX_FILL = (0, 0, 0)
"""The colour of the bars that ``resize_mode="letterbox"`` adds (black)."""

_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def resize(image: Image.Image, cfg: PreprocessConfig) -> Image.Image:
    """Resize an RGB image to ``cfg.image_size`` square, following ``cfg.resize_mode``."""
    size = cfg.image_size
    resample = _FILTERS[cfg.interpolation]
    width, height = image.size
    if cfg.resize_mode == "squash":
        return image.resize((size, size), resample, reducing_gap=cfg.reducing_gap)
    scale = size / min(width, height) if cfg.resize_mode == "crop" else size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    image = image.resize((new_w, new_h), resample, reducing_gap=cfg.reducing_gap)
    if cfg.resize_mode == "crop":
        left, top = (new_w - size) // 2, (new_h - size) // 2
        return image.crop((left, top, left + size, top + size))
    canvas = Image.new("RGB", (size, size), LETTERBOX_FILL)
    canvas.paste(image, ((size - new_w) // 2, (size - new_h) // 2))
    return canvas


class LoadedPixels(NamedTuple):
    """What :func:`load_pixels` returns."""

    pixels: torch.Tensor
    """float32 ``[3, S, S]``, values in [0, 255], RGB."""
    size: tuple[int, int]
    """``(width, height)`` of the whole input as displayed (EXIF orientation applied), before any draft decoding."""


def load_pixels(
    source: ImageSource,
    cfg: PreprocessConfig,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    crop: Callable[[Image.Image], Image.Image] | None = None,
) -> LoadedPixels:
    """Decode one input and preprocess it into the model's pixels: the one decoding path of imgsent.

    Args:
        source: A path, encoded bytes, PIL image, NumPy array or torch tensor (see
            :func:`imgsent.images.load_image`).
        cfg: The model's preprocessing: the decoding policy.
        max_pixels: Refuse inputs with more pixels (decompression bombs).
        crop: Optional function applied to the decoded full-resolution image before the resize
            (training augmentation). With it, JPEGs are decoded at full scale.

    Returns:
        :class:`LoadedPixels`: float32 pixels ``[3, image_size, image_size]`` in [0, 255], and the
        input's displayed size.

    Raises:
        ImageDecodeError: The input cannot be decoded.

    Example:
        >>> import numpy as np
        >>> pixels, size = load_pixels(np.zeros((48, 64, 3), np.uint8), PreprocessConfig(image_size=32))
        >>> pixels.dtype, tuple(pixels.shape), size
        (torch.float32, (3, 32, 32), (64, 48))
    """
    draft = (cfg.image_size, cfg.image_size) if cfg.jpeg_draft and crop is None else None
    image, size = decode_image(source, max_pixels=max_pixels, draft_size=draft)
    if crop is not None:
        image = crop(image)
    return LoadedPixels(preprocess(image, cfg), size)


def preprocess(image: Image.Image, cfg: PreprocessConfig) -> torch.Tensor:
    """Resize one decoded RGB image: the per-image half of preprocessing.

    Returns:
        A float32 tensor ``[3, image_size, image_size]`` of values in [0, 255]: whole numbers
        after Pillow's antialiased resize, unrounded with ``cfg.resize_antialias=False`` (as
        TensorFlow).
    """
    if not cfg.resize_antialias:
        return resize_float(_to_tensor(image), cfg)
    return _to_tensor(resize(image, cfg)).float()


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a uint8 tensor [3, H, W]."""
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def resize_float(pixels: torch.Tensor, cfg: PreprocessConfig) -> torch.Tensor:
    """Resize a [3, H, W] image in float32 without antialiasing, as ``tf.image.resize`` does.

    Bilinear and bicubic use half-pixel centres (``align_corners=False``), which is TensorFlow 2's
    convention, so the result equals ``tf.image.resize(image, (S, S))`` up to float rounding.
    """
    size = cfg.image_size
    mode = cfg.interpolation if cfg.interpolation != "nearest" else "nearest-exact"
    height, width = pixels.shape[-2:]
    if cfg.resize_mode == "squash":
        new_h, new_w = size, size
    else:
        scale = size / min(width, height) if cfg.resize_mode == "crop" else size / max(width, height)
        new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    extra = {} if mode.startswith("nearest") else {"align_corners": False, "antialias": False}
    out = torch.nn.functional.interpolate(pixels[None].float(), size=(new_h, new_w), mode=mode, **extra)[0]
    if cfg.interpolation == "bicubic":
        out = out.clamp(0.0, 255.0)
    if cfg.resize_mode == "crop":
        top, left = (new_h - size) // 2, (new_w - size) // 2
        return out[:, top : top + size, left : left + size].contiguous()
    if cfg.resize_mode == "letterbox":
        canvas = torch.tensor(LETTERBOX_FILL, dtype=torch.float32).view(3, 1, 1).repeat(1, size, size)
        top, left = (size - new_h) // 2, (size - new_w) // 2
        canvas[:, top : top + new_h, left : left + new_w] = out
        return canvas
    return out


def normalize(batch: torch.Tensor, cfg: PreprocessConfig, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Scale a batch of pixels [B, 3, S, S] in [0, 255] to [0, 1] and apply the mean and std, in ``dtype``."""
    mean = torch.tensor(cfg.mean, device=batch.device, dtype=dtype).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(cfg.std, device=batch.device, dtype=dtype).view(1, 3, 1, 1) * 255.0
    return (batch.to(dtype) - mean) / std
