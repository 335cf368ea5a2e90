"""Find input files: glob patterns expanded, image and video files under folders (case-insensitive extensions, symlinks followed without loops)."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator

from imgsent.errors import InputNotFoundError

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm", ".pbm",
     ".pnm", ".tga", ".ico", ".dib", ".avif", ".heic", ".heif"}
)

VIDEO_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"})
"""Video containers found by a folder scan; each is classified from sampled frames."""


def has_image_extension(name: str) -> bool:
    """True when the file name ends in a known image extension, in any letter case."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def has_video_extension(name: str) -> bool:
    """True when the file name ends in a known video extension (:data:`VIDEO_EXTENSIONS`), in any letter case."""
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def iter_image_files(paths: Iterable[str | os.PathLike[str]], *, recursive: bool = False) -> Iterator[str]:
    """Yield image and video file paths under ``paths``, in a stable sorted order per folder.

    Files named explicitly are always yielded (even without an image extension, so a bad
    file becomes an error row rather than vanishing). In folders, only names with an image
    or video extension are kept, compared case-insensitively; directories are never yielded, even
    when named like images. Symlinks are followed, and a folder reached twice (a symlink
    loop) is visited once. Entries that vanish during the scan are skipped.

    Args:
        paths: Files and folders.
        recursive: Descend into sub-folders.

    Yields:
        Paths as strings, as they were reached (not resolved).

    Example:
        >>> list(iter_image_files(["examples/images"]))[:1]
        ['examples/images/astronaut_eileen_collins.jpg']
    """
    seen_dirs: set[tuple[int, int]] = set()
    for path in paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            yield from _walk(path, recursive, seen_dirs)
        else:
            yield path


def _walk(folder: str, recursive: bool, seen: set[tuple[int, int]]) -> Iterator[str]:
    try:
        info = os.stat(folder)
    except OSError:
        return
    key = (info.st_dev, info.st_ino)
    if key in seen:
        return
    seen.add(key)
    try:
        with os.scandir(folder) as entries:
            names = sorted((entry.name, entry) for entry in entries)
    except OSError:
        return
    subfolders: list[str] = []
    for name, entry in names:
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:
            is_dir = False
        if is_dir:
            subfolders.append(entry.path)
        elif has_image_extension(name) or has_video_extension(name):
            yield entry.path  # broken links too: they become error rows
    if recursive:
        for sub in subfolders:
            yield from _walk(sub, recursive, seen)


_GLOB_CHARS = frozenset("*?[")


def expand_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Check that every input exists, expanding glob patterns (``*``, ``?``, ``[...]``, ``**``).

    Patterns are expanded here too because a quoted pattern, or a shell that does not expand
    it (Windows), passes it through literally. A path that exists is never treated as a pattern.

    Args:
        paths: Files, folders and glob patterns.

    Returns:
        Existing paths, in the order given; each pattern's matches sorted.

    Raises:
        InputNotFoundError: Some paths do not exist or patterns match nothing; the message lists them.

    Example:
        >>> expand_inputs(["examples/images/co*.jpg"])
        ['examples/images/coffee_cup.jpg']
    """
    found: list[str] = []
    missing: list[str] = []
    for path in paths:
        text = os.fspath(path)
        if os.path.lexists(text):
            found.append(text)
        elif _GLOB_CHARS & set(text) and (matches := sorted(glob.glob(os.path.expanduser(text), recursive=True))):
            found.extend(matches)
        else:
            missing.append(text)
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputNotFoundError(
            f"No such file or folder: {shown}. Check the spelling; glob patterns such as "
            "'photos/*.jpg' must match at least one file."
        )
    return found
