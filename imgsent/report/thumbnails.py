"""Small JPEG thumbnails, base64-encoded for embedding, made in parallel threads."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from imgsent.environment import available_cores
from imgsent.images import DEFAULT_MAX_PIXELS, load_image
from imgsent.scan import has_video_extension
from imgsent.video import sample_frames


def thumbnail_uri(path: str, size: int = 128, quality: int = 80) -> str | None:
    """A ``data:image/jpeg;base64,...`` URI of the image shrunk to fit ``size`` px, or ``None`` if unreadable."""
    try:
        if has_video_extension(path):  # a video: its middle frame
            image = load_image(sample_frames(path, 1)[0].image)
        else:
            image = load_image(path, max_pixels=DEFAULT_MAX_PIXELS, draft_size=(size, size))
        image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
    except (OSError, ValueError, ImportError):  # ImageDecodeError is a ValueError; no PyAV an ImportError
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def make_thumbnails(
    paths: Sequence[str],
    *,
    size: int = 128,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[str | None]:
    """Thumbnails of ``paths`` in order, decoded by a thread pool (Pillow releases the GIL while decoding)."""
    workers = workers or min(8, available_cores() + 1)
    out: list[str | None] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, uri in enumerate(pool.map(lambda p: thumbnail_uri(p, size), paths), 1):
            out.append(uri)
            if on_progress is not None:
                on_progress(done, len(paths))
    return out
