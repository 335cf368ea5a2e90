"""Preprocessing: decoded RGB image -> uint8 tensor, and uint8 batch -> normalised float batch.

Resizing runs in the data-loading workers and yields compact uint8 tensors; normalisation
runs on the target device, on whole batches.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from imgsent.config import PreprocessConfig

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
        return image.resize((size, size), resample, reducing_gap=3.0)
    scale = size / min(width, height) if cfg.resize_mode == "crop" else size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    image = image.resize((new_w, new_h), resample, reducing_gap=3.0)
    if cfg.resize_mode == "crop":
        left, top = (new_w - size) // 2, (new_h - size) // 2
        return image.crop((left, top, left + size, top + size))
    canvas = Image.new("RGB", (size, size), (0, 0, 0))
    canvas.paste(image, ((size - new_w) // 2, (size - new_h) // 2))
    return canvas


def to_uint8_tensor(image: Image.Image) -> torch.Tensor:
    """Convert an RGB PIL image to a uint8 tensor [3, H, W]."""
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def preprocess(image: Image.Image, cfg: PreprocessConfig) -> torch.Tensor:
    """Resize and convert one RGB image: the per-image half of preprocessing.

    Returns:
        A uint8 tensor of shape [3, image_size, image_size]; with ``cfg.resize_antialias=False``
        a float32 tensor of the same shape with values in [0, 255], not rounded (as TensorFlow).
    """
    if not cfg.resize_antialias:
        return resize_float(to_uint8_tensor(image), cfg)
    return to_uint8_tensor(resize(image, cfg))


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
        canvas = torch.zeros(3, size, size)
        top, left = (size - new_h) // 2, (size - new_w) // 2
        canvas[:, top : top + new_h, left : left + new_w] = out
        return canvas
    return out


def normalize(batch: torch.Tensor, cfg: PreprocessConfig, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Scale a uint8 batch [B, 3, S, S] to [0, 1] and apply the mean and std, in ``dtype``."""
    mean = torch.tensor(cfg.mean, device=batch.device, dtype=dtype).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(cfg.std, device=batch.device, dtype=dtype).view(1, 3, 1, 1) * 255.0
    return (batch.to(dtype) - mean) / std
