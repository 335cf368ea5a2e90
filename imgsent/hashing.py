"""Checksums of files, read in chunks: the one place imgsent hashes a file's bytes."""

from __future__ import annotations

import hashlib
import os
from typing import Protocol, TypeVar

CHUNK_SIZE = 1 << 20
"""Bytes read at a time, so a file of any size hashes in constant memory."""


class Digest(Protocol):
    """A ``hashlib`` object: anything with ``update(bytes)``."""

    def update(self, data: bytes, /) -> None: ...


D = TypeVar("D", bound=Digest)


def update_from_file(digest: D, path: str | os.PathLike[str]) -> D:
    """Feed a file's bytes into ``digest`` (any ``hashlib`` object) in chunks, and return it.

    Example:
        >>> import hashlib, tempfile
        >>> with tempfile.NamedTemporaryFile(delete=False) as fh:
        ...     _ = fh.write(b"abc")
        >>> update_from_file(hashlib.sha256(b"prefix|"), fh.name).hexdigest() == hashlib.sha256(b"prefix|abc").hexdigest()
        True
    """
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile(delete=False) as fh:
        ...     _ = fh.write(b"abc")
        >>> file_sha256(fh.name)[:16]
        'ba7816bf8f01cfea'
    """
    return update_from_file(hashlib.sha256(), path).hexdigest()
