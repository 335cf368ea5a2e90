"""Append-only line files (CSV, JSONL, the teacher cache): cut a torn last line before appending.

A process killed mid-write leaves a last line without its newline. Every writer that resumes an
append-only file calls :func:`cut_torn_line` first, so only complete lines are trusted and new
rows never glue onto a fragment.
"""

from __future__ import annotations

import os
from pathlib import Path


def cut_torn_line(path: str | os.PathLike[str], *, fsync: bool = False) -> int:
    """Truncate ``path`` after its last newline; return the number of bytes removed.

    A missing or empty file is left alone (0). With ``fsync``, the cut is flushed to disk.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "rows.jsonl"
        >>> _ = path.write_bytes(b'{"a": 1}\\n{"a": 2')
        >>> cut_torn_line(path), path.read_bytes()
        (7, b'{"a": 1}\\n')
    """
    path = Path(path)
    if not path.exists():
        return 0
    with open(path, "rb+") as handle:
        data = handle.read()
        end = complete_length(data)
        if end == len(data):
            return 0
        handle.truncate(end)
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())
    return len(data) - end


def complete_length(data: bytes) -> int:
    """How many leading bytes of ``data`` are complete lines (up to and including the last newline).

    Example:
        >>> complete_length(b"a\\nb"), complete_length(b"a\\n"), complete_length(b"a")
        (2, 2, 0)
    """
    return data.rfind(b"\n") + 1
