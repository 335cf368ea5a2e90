"""Decode one input (path, bytes, PIL image, array or tensor) into an RGB PIL image.

:func:`load_image` is the single entry point every other part of imgsent uses to
read pixels. It never crashes on bad input and never blocks: any file or value
that cannot become an image raises :class:`~imgsent.errors.ImageDecodeError`
whose message names the input and the reason.

Rules applied to every input:

* **Orientation.** The EXIF ``Orientation`` tag is applied
  (:func:`PIL.ImageOps.exif_transpose`), so a portrait phone photo comes out
  portrait. This also holds for PIL images passed in memory.
* **Animations.** Animated GIF, WebP and PNG files and multi-page TIFFs yield
  their *first* frame only.
* **Transparency** (``RGBA``, ``LA``, ``PA``, palette or single-colour
  transparency) is composited on a white background.
* **Modes.** Every PIL mode is accepted. High bit-depth modes are scaled to
  8 bits: ``I;16*`` divides by 257 (full 16-bit range); ``I`` (32-bit int)
  is used as-is when its values fit 0-255, divided by 257 when they fit
  0-65535 and min-max stretched otherwise; ``F`` (float) is multiplied by 255
  when its values fit 0-1, used as-is when they fit 0-255 and min-max
  stretched otherwise.
* **Size limit.** Images with more than ``max_pixels`` pixels are refused from
  the file header, before any pixel is decoded (decompression-bomb guard).
  Pillow's own bomb check (:data:`PIL.Image.MAX_IMAGE_PIXELS`) is caught and
  reported the same way; no global Pillow setting is changed.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import warnings
from typing import IO, TYPE_CHECKING, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imgsent.errors import ImageDecodeError, InvalidConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_MAX_PIXELS", "ImageSource", "describe_source", "load_image"]

DEFAULT_MAX_PIXELS: int = 89_478_485
"""Largest accepted ``width * height`` (about 89.5 MP, 9459 x 9459).

Equal to Pillow's default ``PIL.Image.MAX_IMAGE_PIXELS`` (a 24-bit RGB image of
about 256 MiB). Pass ``max_pixels=`` to :func:`load_image` to change it per call.
"""

ImageSource = Union[
    str, "os.PathLike[str]", bytes, bytearray, memoryview, Image.Image, np.ndarray, "torch.Tensor"
]
"""Anything :func:`load_image` accepts."""

_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_REFUSED_FORMATS = {"EPS": "EPS/PostScript needs Ghostscript to render; convert it to PNG first"}
_FLOAT_TOLERANCE = 1e-3


def describe_source(source: object) -> str:
    """Return a short printable description of an input, for result rows and messages.

    Never raises and never reads the input's pixels.

    Args:
        source: Any value, usually an :data:`ImageSource`.

    Returns:
        The path for paths, otherwise a ``<...>`` summary of type, mode/dtype and size.

    Example:
        >>> import numpy as np
        >>> describe_source("photos/cat.jpg")
        'photos/cat.jpg'
        >>> describe_source(b"\\x89PNG" + bytes(1230))
        '<bytes: 1234 B>'
        >>> describe_source(np.zeros((480, 640, 3), dtype=np.uint8))
        '<ndarray uint8 (480, 640, 3)>'
    """
    try:
        if isinstance(source, (str, os.PathLike)):
            return os.fsdecode(os.fspath(source))
        if isinstance(source, (bytes, bytearray)):
            return f"<{type(source).__name__}: {len(source)} B>"
        if isinstance(source, memoryview):
            return f"<memoryview: {source.nbytes} B>"
        if isinstance(source, Image.Image):
            return f"<PIL.Image {source.mode} {source.width}x{source.height}>"
        if isinstance(source, np.ndarray):
            return f"<ndarray {source.dtype} {tuple(source.shape)}>"
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(source, torch.Tensor):
            dtype = str(source.dtype).removeprefix("torch.")
            device = "" if source.device.type == "cpu" else f" {source.device}"
            return f"<Tensor {dtype} {tuple(source.shape)}{device}>"
        return f"<{type(source).__name__}>"
    except Exception:  # a description must never fail
        return f"<{type(source).__name__}>"


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode one input into a new RGB :class:`PIL.Image.Image`.

    Args:
        source: A file path (``str`` or ``os.PathLike``); encoded file bytes
            (``bytes``, ``bytearray``, ``memoryview``); a PIL image (any mode);
            a NumPy array ``HxWxC`` or ``HxW`` (``C`` in 1, 3, 4; ``uint8``, or
            float in [0, 1]); or a torch tensor ``CxHxW`` or ``HxW`` (torchvision
            layout; ``uint8``, or float in [0, 1]). The input is never modified.
        max_pixels: Refuse images with more than this many pixels
            (default :data:`DEFAULT_MAX_PIXELS`). For files it is checked from the
            header, before decoding.
        draft_size: Optional ``(width, height)`` the caller will resize to. For
            JPEG (and phone MPO) files the decoder then uses DCT scaling (1/2, 1/4
            or 1/8) as long as both sides stay at least this large, which is much
            faster for big photos. Ignored for other inputs. Default ``None``
            decodes full size.

    Returns:
        A new RGB image (EXIF orientation applied, first frame, alpha on white),
        detached from any file handle.

    Raises:
        ImageDecodeError: The input is missing, unreadable, not an image,
            truncated or corrupt, too large, or an array/tensor of the wrong
            shape, dtype or value range. The message names the input and reason.
        InvalidConfigError: ``max_pixels`` or ``draft_size`` is invalid.

    Example:
        >>> import numpy as np
        >>> image = load_image(np.zeros((48, 64, 3), dtype=np.uint8))
        >>> image.mode, image.size
        ('RGB', (64, 48))
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise InvalidConfigError(
            f"max_pixels must be a positive int, got {max_pixels!r}; the default is {DEFAULT_MAX_PIXELS}."
        )
    if draft_size is not None and not (
        isinstance(draft_size, (tuple, list))
        and len(draft_size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in draft_size)
    ):
        raise InvalidConfigError(
            f"draft_size must be None or (width, height) with positive ints, got {draft_size!r}."
        )
    draft = tuple(draft_size) if draft_size is not None else None
    if isinstance(source, (str, os.PathLike)):
        return _load_path(source, max_pixels, draft)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = source.tobytes() if isinstance(source, memoryview) else bytes(source)
        name = describe_source(source)
        if not data:
            raise ImageDecodeError(f"Cannot decode {name}: the data is empty.")
        return _decode_stream(io.BytesIO(data), name, max_pixels, draft)
    if isinstance(source, Image.Image):
        return _from_pil(source, max_pixels)
    if isinstance(source, np.ndarray):
        return _from_array(source, describe_source(source), "HWC", max_pixels)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(source, torch.Tensor):
        return _from_tensor(source, max_pixels)
    raise ImageDecodeError(
        f"Cannot load an image from {describe_source(source)}: expected a path, bytes, "
        "PIL.Image.Image, numpy.ndarray or torch.Tensor."
    )


def _load_path(path: str | os.PathLike[str], max_pixels: int, draft: tuple[int, ...] | None) -> Image.Image:
    """Open a file without following it into FIFOs/devices, then decode it."""
    name = describe_source(path)
    if not name:
        raise ImageDecodeError("Cannot open image '': the path is empty.")
    if name.startswith(("http://", "https://")):
        raise ImageDecodeError(f"Cannot open image {name!r}: URLs are not fetched; download the file first.")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except IsADirectoryError:
        raise ImageDecodeError(f"Cannot open image {name!r}: it is a directory.") from None
    except FileNotFoundError:
        reason = "broken symbolic link" if os.path.islink(path) else "no such file"
        raise ImageDecodeError(f"Cannot open image {name!r}: {reason}.") from None
    except PermissionError:  # Windows also says this for directories
        reason = "it is a directory" if os.path.isdir(path) else "permission denied"
        raise ImageDecodeError(f"Cannot open image {name!r}: {reason}.") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ImageDecodeError(f"Cannot open image {name!r}: {reason}.") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImageDecodeError(f"Cannot open image {name!r}: it is a directory.")
        if not stat.S_ISREG(info.st_mode):
            raise ImageDecodeError(
                f"Cannot open image {name!r}: not a regular file (pipe, socket or device)."
            )
        if info.st_size == 0:
            raise ImageDecodeError(f"Cannot decode image {name!r}: the file is empty (0 bytes).")
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
        file = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with file:
        return _decode_stream(file, repr(name), max_pixels, draft)


def _decode_stream(
    stream: IO[bytes], name: str, max_pixels: int, draft: tuple[int, ...] | None
) -> Image.Image:
    """Decode an open binary stream; every failure becomes an ImageDecodeError."""
    try:
        with warnings.catch_warnings():
            # Pillow's global bomb warning is replaced by the max_pixels check below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                if image.format in _REFUSED_FORMATS:
                    raise ImageDecodeError(f"Cannot decode image {name}: {_REFUSED_FORMATS[image.format]}.")
                _check_pixels(image.size, max_pixels, name)
                # Image.open is positioned on the first frame; later frames are never read.
                if draft is not None and image.format in ("JPEG", "MPO"):
                    image.draft("RGB", _oriented_draft(image, draft))
                image.load()
                with contextlib.suppress(Exception):  # malformed EXIF: keep stored orientation
                    ImageOps.exif_transpose(image, in_place=True)
                return _to_rgb(image, name)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(
            f"Cannot decode image {name}: refused as a possible decompression bomb "
            f"({str(exc).rstrip('.')}). "
            "Pillow's own limit PIL.Image.MAX_IMAGE_PIXELS applies on top of max_pixels."
        ) from None
    except UnidentifiedImageError:
        head = _peek(stream)
        raise ImageDecodeError(
            f"Cannot decode image {name}: not a recognised image format (starts with {head!r})."
        ) from None
    except MemoryError:
        raise ImageDecodeError(f"Cannot decode image {name}: out of memory.") from None
    except Exception as exc:
        reason = str(exc).rstrip(".") or type(exc).__name__
        kind = "truncated" if "truncated" in reason.lower() else "corrupt or unsupported"
        reason = f"{kind} image data ({reason})"
        raise ImageDecodeError(f"Cannot decode image {name}: {reason}.") from None


def _peek(stream: IO[bytes], size: int = 12) -> bytes:
    """First bytes of a stream, for error messages."""
    try:
        stream.seek(0)
        return bytes(stream.read(size))
    except Exception:
        return b""


def _check_pixels(size: tuple[int, int], max_pixels: int, name: str) -> None:
    """Refuse empty images and images above ``max_pixels``."""
    width, height = size
    if width < 1 or height < 1:
        raise ImageDecodeError(f"Cannot decode image {name}: it has no pixels ({width}x{height}).")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"Cannot decode image {name}: {width}x{height} = {width * height} pixels is above "
            f"max_pixels={max_pixels}. Pass a larger max_pixels to load_image if you trust it."
        )


def _oriented_draft(image: Image.Image, draft: tuple[int, ...]) -> tuple[int, int]:
    """Swap the draft size when EXIF says the stored image is rotated by 90 degrees."""
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    width, height = draft
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _from_pil(image: Image.Image, max_pixels: int) -> Image.Image:
    """Convert a caller's PIL image without modifying it."""
    name = describe_source(image)
    _check_pixels(image.size, max_pixels, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            oriented = ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF or lazily opened broken file
        oriented = image
    try:
        return _to_rgb(oriented, name)
    except ImageDecodeError:
        raise
    except Exception as exc:
        raise ImageDecodeError(f"Cannot convert {name} to RGB: {exc}.") from None


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    """Return a new RGB image: alpha on white, high bit depths scaled to 8 bits."""
    mode = image.mode
    if mode == "La":
        image = _unpremultiply_la(image)
        mode = "LA"
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
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


def _from_tensor(tensor: torch.Tensor, max_pixels: int) -> Image.Image:
    """Validate a CHW/HW tensor and convert it through the array path."""
    import torch

    name = describe_source(tensor)
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
    return _from_array(array, name, "CHW", max_pixels)


def _from_array(array: np.ndarray, name: str, layout: str, max_pixels: int) -> Image.Image:
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
    _check_pixels((array.shape[1], array.shape[0]), max_pixels, name)
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
    return _to_rgb(Image.fromarray(array), name)


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
