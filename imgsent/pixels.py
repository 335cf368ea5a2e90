"""Pixels to RGB: PIL modes, alpha, high bit depths, NumPy arrays and torch tensors.

The in-memory half of :func:`imgsent.images.load_image`: every function takes a value
already in memory plus the name to use in messages, and returns a new RGB image or
raises :class:`~imgsent.errors.ImageDecodeError`. The rules are listed in
:mod:`imgsent.images`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from imgsent.errors import ImageDecodeError

if TYPE_CHECKING:
    import torch

ALPHA_BACKGROUND = (255, 255, 255)
"""Transparent pixels are composited on this colour (white)."""
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_FLOAT_TOLERANCE = 1e-3


def check_pixels(size: tuple[int, int], max_pixels: int, name: str) -> None:
    """Refuse empty images and images above ``max_pixels``."""
    width, height = size
    if width < 1 or height < 1:
        raise ImageDecodeError(f"Cannot decode image {name}: it has no pixels ({width}x{height}).")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"Cannot decode image {name}: {width}x{height} = {width * height} pixels is above "
            f"max_pixels={max_pixels}. Pass a larger max_pixels to load_image if you trust it."
        )


def from_pil(image: Image.Image, name: str, max_pixels: int) -> Image.Image:
    """Convert a caller's PIL image, described as ``name``, without modifying it."""
    check_pixels(image.size, max_pixels, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            oriented = ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF or lazily opened broken file
        oriented = image
    try:
        return to_rgb(oriented, name)
    except ImageDecodeError:
        raise
    except Exception as exc:
        raise ImageDecodeError(f"Cannot convert {name} to RGB: {exc}.") from None


def to_rgb(image: Image.Image, name: str) -> Image.Image:
    """Return a new RGB image: alpha on white, high bit depths scaled to 8 bits."""
    mode = image.mode
    if mode == "La":
        image = _unpremultiply_la(image)
        mode = "LA"
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, ALPHA_BACKGROUND)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if mode.startswith("I;16"):
        gray = np.asarray(image).astype(np.float32) / 257.0
        return Image.fromarray(np.rint(gray).astype(np.uint8)).convert("RGB")
    if mode in ("I", "F"):
        return Image.fromarray(_scale_to_uint8(np.asarray(image), mode)).convert("RGB")
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageDecodeError(f"Cannot convert {name} from mode {mode!r} to RGB: {exc}.") from None


def _unpremultiply_la(image: Image.Image) -> Image.Image:
    """Turn premultiplied ``La`` into straight ``LA`` (Pillow has no direct conversion)."""
    arr = np.asarray(image).astype(np.float32)
    alpha = arr[..., 1:2]
    luma = np.where(alpha > 0, arr[..., 0:1] * 255.0 / np.maximum(alpha, 1), 0)
    out = np.concatenate([np.clip(np.rint(luma), 0, 255), alpha], axis=-1).astype(np.uint8)
    return Image.merge("LA", [Image.fromarray(out[..., 0]), Image.fromarray(out[..., 1])])


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Scale 32-bit int (``I``) or float (``F``) pixels to uint8 (see the module docstring)."""
    data = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if mode == "F" and low >= 0 and high <= 1:
        data = data * 255.0
    elif low >= 0 and high <= 255:
        pass
    elif mode == "I" and low >= 0 and high <= 65535:
        data = data / 257.0
    else:
        data = (data - low) * (255.0 / (high - low)) if high > low else np.zeros_like(data)
    return np.clip(np.rint(data), 0, 255).astype(np.uint8)


def from_tensor(tensor: torch.Tensor, name: str, max_pixels: int) -> Image.Image:
    """Validate a CHW/HW tensor, described as ``name``, and convert it through the array path."""
    import torch

    if tensor.ndim == 3 and tensor.shape[0] not in (1, 3, 4) and tensor.shape[-1] in (1, 3, 4):
        raise ImageDecodeError(
            f"Cannot load {name}: tensors must be CxHxW (torchvision layout) but this looks "
            "HxWxC; use tensor.permute(2, 0, 1)."
        )
    if tensor.dtype != torch.uint8 and not tensor.dtype.is_floating_point:
        raise ImageDecodeError(
            f"Cannot load {name}: dtype must be torch.uint8, or a float dtype with values in "
            "[0, 1]; convert with tensor.to(torch.uint8) or tensor.float() / 255."
        )
    data = tensor.detach().to("cpu")
    if data.dtype in (torch.bfloat16, torch.float16):
        data = data.float()
    array = data.numpy()
    if array.ndim == 3:
        array = np.moveaxis(array, 0, -1)
    return from_array(array, name, "CHW", max_pixels)


def from_array(array: np.ndarray, name: str, layout: str, max_pixels: int) -> Image.Image:
    """Validate an HWC/HW array (uint8, or float in [0, 1]) and make an RGB image."""
    expected = "CxHxW or HxW" if layout == "CHW" else "HxWxC or HxW"
    if array.ndim == 4:
        raise ImageDecodeError(
            f"Cannot load {name}: this is a batch of {array.shape[0]} images; pass one image at "
            f"a time ({expected}), e.g. list(batch)."
        )
    if array.ndim not in (2, 3):
        raise ImageDecodeError(f"Cannot load {name}: expected {expected} dimensions, got {array.ndim}.")
    if (
        layout == "HWC"
        and array.ndim == 3
        and array.shape[-1] not in (1, 3, 4)
        and array.shape[0] in (1, 3, 4)
    ):
        raise ImageDecodeError(
            f"Cannot load {name}: arrays must be HxWxC but this looks CxHxW; use array.transpose(1, 2, 0)."
        )
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4):
        raise ImageDecodeError(
            f"Cannot load {name}: expected 1, 3 or 4 channels ({expected}), got {array.shape[-1]}."
        )
    if array.size == 0:
        raise ImageDecodeError(f"Cannot load {name}: the image has no pixels.")
    check_pixels((array.shape[1], array.shape[0]), max_pixels, name)
    if np.issubdtype(array.dtype, np.floating):
        array = _float_to_uint8(array, name)
    elif array.dtype != np.uint8:
        raise ImageDecodeError(
            f"Cannot load {name}: dtype must be uint8, or float with values in [0, 1]; got "
            f"{array.dtype}. Convert with array.astype(np.uint8) (values 0-255) or "
            "array / 255.0."
        )
    array = np.ascontiguousarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return to_rgb(Image.fromarray(array), name)


def _float_to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    """Check a float image is finite and in [0, 1], then scale it to uint8."""
    if not np.isfinite(array).all():
        raise ImageDecodeError(f"Cannot load {name}: it contains NaN or infinite values.")
    low, high = float(array.min()), float(array.max())
    if low < -_FLOAT_TOLERANCE or high > 1 + _FLOAT_TOLERANCE:
        if low >= 0 and high <= 255:
            hint = "it looks like 0-255 values: divide by 255 or cast to uint8"
        elif low < 0:
            hint = "it looks normalised with mean/std: undo the normalisation first"
        else:
            hint = "rescale it to [0, 1]"
        raise ImageDecodeError(
            f"Cannot load {name}: float values must lie in [0, 1], got min={low:.4g}, max={high:.4g}; {hint}."
        )
    return np.rint(np.clip(array.astype(np.float32), 0, 1) * 255).astype(np.uint8)
