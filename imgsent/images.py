"""Decode one input (path, bytes, PIL image, array or tensor) into an RGB PIL image.

:func:`decode_image` (and :func:`load_image`, its image alone) is how imgsent reads
pixels; :func:`imgsent.transforms.load_pixels` builds the model's input on it. It never
crashes on bad input and never blocks: any file or value that cannot become an image
raises :class:`~imgsent.errors.ImageDecodeError` whose message names the input and the
reason.

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
from imgsent.pixels import check_pixels, from_array, from_pil, from_tensor, to_rgb

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_MAX_PIXELS", "ImageSource", "decode_image", "describe_source", "load_image"]

DEFAULT_MAX_PIXELS: int = 89_478_485
"""Largest accepted ``width * height`` (about 89.5 MP, 9459 x 9459).

Equal to Pillow's default ``PIL.Image.MAX_IMAGE_PIXELS`` (a 24-bit RGB image of
about 256 MiB). Pass ``max_pixels=`` to :func:`load_image` to change it per call.
"""

ImageSource = Union[
    str, "os.PathLike[str]", bytes, bytearray, memoryview, Image.Image, np.ndarray, "torch.Tensor"
]
"""Anything :func:`load_image` accepts."""

_REFUSED_FORMATS = {"EPS": "EPS/PostScript needs Ghostscript to render; convert it to PNG first"}


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
    """Decode one input into a new RGB :class:`PIL.Image.Image` (the image of :func:`decode_image`).

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
    return decode_image(source, max_pixels=max_pixels, draft_size=draft_size)[0]


def decode_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode one input into a new RGB image, and say how large the image is at full resolution.

    Arguments, rules and errors are those of :func:`load_image`.

    Returns:
        ``(image, (width, height))``: the RGB image (smaller than the file when ``draft_size``
        let a JPEG decode at a reduced scale) and the size of the whole image as displayed
        (EXIF orientation applied), which is the image's own size for every other input.

    Example:
        >>> import numpy as np
        >>> image, size = decode_image(np.zeros((48, 64, 3), dtype=np.uint8))
        >>> image.size, size
        ((64, 48), (64, 48))
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
    image: Image.Image | None = None
    if isinstance(source, Image.Image):
        image = from_pil(source, describe_source(source), max_pixels)
    elif isinstance(source, np.ndarray):
        image = from_array(source, describe_source(source), "HWC", max_pixels)
    else:
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(source, torch.Tensor):
            image = from_tensor(source, describe_source(source), max_pixels)
    if image is not None:
        return image, image.size
    raise ImageDecodeError(
        f"Cannot load an image from {describe_source(source)}: expected a path, bytes, "
        "PIL.Image.Image, numpy.ndarray or torch.Tensor."
    )


def _load_path(
    path: str | os.PathLike[str], max_pixels: int, draft: tuple[int, ...] | None
) -> tuple[Image.Image, tuple[int, int]]:
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
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode an open binary stream; every failure becomes an ImageDecodeError."""
    try:
        with warnings.catch_warnings():
            # Pillow's global bomb warning is replaced by the max_pixels check below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                if image.format in _REFUSED_FORMATS:
                    raise ImageDecodeError(f"Cannot decode image {name}: {_REFUSED_FORMATS[image.format]}.")
                check_pixels(image.size, max_pixels, name)
                size = _displayed_size(image)
                # Image.open is positioned on the first frame; later frames are never read.
                if draft is not None and image.format in ("JPEG", "MPO"):
                    image.draft("RGB", _oriented_draft(image, draft))
                image.load()
                with contextlib.suppress(Exception):  # malformed EXIF: keep stored orientation
                    ImageOps.exif_transpose(image, in_place=True)
                return to_rgb(image, name), size
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


def _quarter_turned(image: Image.Image) -> bool:
    """Whether EXIF says the stored image is displayed turned by 90 degrees."""
    try:
        return image.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except Exception:  # malformed EXIF is ignored, as exif_transpose ignores it
        return False


def _displayed_size(image: Image.Image) -> tuple[int, int]:
    """The size of the whole image once its EXIF orientation is applied."""
    width, height = image.size
    return (height, width) if _quarter_turned(image) else (width, height)


def _oriented_draft(image: Image.Image, draft: tuple[int, ...]) -> tuple[int, int]:
    """Swap the draft size when EXIF says the stored image is rotated by 90 degrees."""
    width, height = draft
    return (height, width) if _quarter_turned(image) else (width, height)
