"""Image embeddings on disk, in durable chunks: the near-duplicate search reads them back block by block.

An :class:`EmbeddingStore` is a folder of ``chunk-NNNNNN.npy`` files of L2-normalised float16
rows (``chunk_size`` images each, in input order) and a ``manifest.json`` naming what they were
computed from (a key of the paths and the embedding model). Each chunk is written to a
temporary file, flushed, fsynced and renamed into place, and the folder is fsynced, as the
teacher cache in :mod:`imgsent.distill.labels` appends and fsyncs its rows; so after a crash or
a SIGKILL every chunk on disk is whole, and :func:`build_store` embeds only the missing ones.

Memory stays bounded at any corpus size: at most one chunk is held while embedding, and readers
load one block (or the rows they need) at a time. Distances are always computed in float32 from
the stored rows, so every search order and every index sees the same numbers.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imgsent.errors import EmbeddingError, InvalidConfigError

if TYPE_CHECKING:
    import torch

EmbedFn = Callable[[list[str]], "torch.Tensor | np.ndarray"]
Progress = Callable[[int, int], None]
STORE_FORMAT = 1
MANIFEST = "manifest.json"
DEFAULT_CHUNK_SIZE = 1024
"""Rows per chunk file: what a rerun after an interruption may redo, at most."""


def store_key(paths: Sequence[str], model_key: str = "") -> str:
    """SHA-256 of the ordered paths and ``model_key`` (what the embeddings were computed with)."""
    digest = hashlib.sha256(f"{STORE_FORMAT}|{model_key}|".encode())
    for path in paths:
        digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


class EmbeddingStore:
    """A folder of embedding chunks: ``n`` rows of ``dim`` float16 values, L2-normalised.

    Attributes:
        folder: Where the chunks and the manifest are.
        n: Number of rows (images).
        chunk_size: Rows per chunk file (the last one may be shorter).
    """

    def __init__(self, folder: Path, n: int, chunk_size: int) -> None:
        self.folder, self.n, self.chunk_size = Path(folder), n, chunk_size
        self._dim: int | None = None

    @property
    def chunks(self) -> int:
        """Number of chunk files when complete."""
        return -(-self.n // self.chunk_size)

    @property
    def dim(self) -> int:
        """Embedding width, read from the first chunk."""
        if self._dim is None:
            self._dim = int(np.load(self._chunk_path(0), mmap_mode="r").shape[1]) if self.n else 0
        return self._dim

    def _chunk_path(self, k: int) -> Path:
        return self.folder / f"chunk-{k:06d}.npy"

    def _rows_in(self, k: int) -> int:
        return min(self.chunk_size, self.n - k * self.chunk_size)

    def has_chunk(self, k: int) -> bool:
        """Whether chunk ``k`` is on disk and whole (right row count, readable header)."""
        try:
            array = np.load(self._chunk_path(k), mmap_mode="r")
        except (OSError, ValueError):
            return False
        return array.ndim == 2 and array.shape[0] == self._rows_in(k) and array.dtype == np.float16

    def chunk(self, k: int) -> np.ndarray:
        """Chunk ``k`` as float32 ``[rows, dim]``."""
        return np.load(self._chunk_path(k)).astype(np.float32)

    def iter_blocks(self, block_rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first row, float32 block)`` covering every row in order, about ``block_rows`` at a time."""
        per = max(1, block_rows // self.chunk_size)
        for k in range(0, self.chunks, per):
            parts = [self.chunk(j) for j in range(k, min(k + per, self.chunks))]
            yield k * self.chunk_size, np.concatenate(parts) if len(parts) > 1 else parts[0]

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """float32 rows at ``indices`` (any order), reading only the chunks that hold them."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), self.dim), dtype=np.float32)
        which = indices // self.chunk_size
        for k in np.unique(which):
            picked = which == k
            mapped = np.load(self._chunk_path(int(k)), mmap_mode="r")
            out[picked] = mapped[indices[picked] - int(k) * self.chunk_size]
            del mapped  # unmap, so read pages do not pile up in the resident set
        return out

    def write_chunk(self, k: int, rows: np.ndarray) -> None:
        """Write chunk ``k`` durably: temporary file, fsync, rename, fsync of the folder."""
        final = self._chunk_path(k)
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(rows, dtype=np.float16))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.folder)


def build_store(
    paths: Sequence[str],
    embed: EmbedFn,
    folder: str | os.PathLike[str],
    *,
    key: str,
    batch_size: int = 256,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
) -> EmbeddingStore:
    """Embed ``paths`` into a store in ``folder``, keeping the whole chunks of an earlier run with the same ``key``.

    Args:
        paths: Images, in order.
        embed: Maps a list of paths to a float array or tensor ``[len(paths), D]``. When it also
            has ``stream(paths)`` (as :class:`~imgsent.distill.features.FeatureEmbedder` does),
            every missing path goes through that one stream, which yields row blocks in order.
        folder: The store's folder (created).
        key: What the rows depend on (:func:`store_key`); a store with another key is cleared.
        batch_size: Paths per ``embed`` call (without ``stream``). Default 256.
        chunk_size: Rows per chunk file; a rerun after an interruption redoes at most one chunk. Default 1024.
        progress: Called with ``(images embedded, total)`` after every block of rows, and once at the start.

    Returns:
        The complete :class:`EmbeddingStore`.

    Raises:
        EmbeddingError: ``embed`` returned the wrong shape or non-finite values.
        InvalidConfigError: ``batch_size`` or ``chunk_size`` is below 1.
    """
    if batch_size < 1 or chunk_size < 1:
        raise InvalidConfigError(f"batch_size and chunk_size must be >= 1, got {batch_size} and {chunk_size}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"format": STORE_FORMAT, "key": key, "n": len(paths), "chunk_size": chunk_size}
    store = EmbeddingStore(folder, len(paths), chunk_size)
    if _read_manifest(folder) != manifest:  # other paths, model or layout: start afresh
        for old in folder.glob("chunk-*"):
            old.unlink()
        (folder / MANIFEST).write_text(json.dumps(manifest) + "\n", encoding="utf-8")
        _fsync_dir(folder)
    todo = [k for k in range(store.chunks) if not store.has_chunk(k)]
    done = len(paths) - sum(store._rows_in(k) for k in todo)
    if progress is not None:
        progress(done, len(paths))
    missing = (paths[i] for k in todo for i in range(k * chunk_size, k * chunk_size + store._rows_in(k)))
    blocks = _embedded_blocks(embed, missing, batch_size)
    pending: list[np.ndarray] = []
    for k in todo:
        need, have = store._rows_in(k), sum(len(p) for p in pending)
        while have < need:
            block = next(blocks, None)
            if block is None:
                raise EmbeddingError(f"embed returned fewer rows than the {len(paths)} paths it was given.")
            pending.append(block)
            have += len(block)
            if progress is not None:
                progress(min(done + have, len(paths)), len(paths))
        rows = np.concatenate(pending) if len(pending) > 1 else pending[0]
        store.write_chunk(k, rows[:need])
        pending = [rows[need:]] if have > need else []
        done += need
    if pending or next(blocks, None) is not None:
        raise EmbeddingError(f"embed returned more rows than the {len(paths)} paths it was given.")
    return store


def _embedded_blocks(embed: EmbedFn, paths: Iterator[str], batch_size: int) -> Iterator[np.ndarray]:
    """Normalised float32 rows for ``paths`` in order: from ``embed.stream`` (one decoding stream), else per batch."""
    stream = getattr(embed, "stream", None)
    if callable(stream):
        for block in stream(paths):
            yield _checked(block, None)
        return
    while batch := list(itertools.islice(paths, batch_size)):
        yield _checked(embed(batch), len(batch))


def _checked(raw: Any, count: int | None) -> np.ndarray:
    """``embed``'s output as L2-normalised float32 ``[count, D]``, or an error."""
    array = np.asarray(raw.detach().cpu().float() if hasattr(raw, "detach") else raw, dtype=np.float32)
    if array.ndim != 2 or (count is not None and array.shape[0] != count):
        raise EmbeddingError(
            f"embed() must return an array of shape [{count if count is not None else 'N'}, D] for "
            f"{count if count is not None else 'N'} paths, got shape {tuple(array.shape)}."
        )
    if not np.isfinite(array).all():
        raise EmbeddingError("embed() returned non-finite values (NaN or inf); check the images and the model.")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, 1e-12)


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["DEFAULT_CHUNK_SIZE", "EmbedFn", "EmbeddingStore", "Progress", "build_store", "store_key"]
