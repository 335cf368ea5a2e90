"""The engine cache: exported models that ONNX Runtime and OpenVINO load, under one key each.

An entry is a folder named by :func:`engine_key` that holds the exported file and a
``manifest.json`` (its size, SHA-256, format and the model it came from). The key is a SHA-256
of exactly what determines the exported graph: every weight (name, shape, float32 values), the
whole model config (architecture, preprocessing, labels, temperature), the export format
version, the ONNX opset and the torch version that traced it. The same key comes from a loaded
model or from a model folder, so the folder path never builds the torch network to look it up.

Using an entry touches its manifest, so "last used" is real. After each new entry the cache is
pruned: entries beyond the :data:`KEEP_ENTRIES` most recently used, and the least recently used
ones while the total exceeds :data:`MAX_BYTES`, are removed (never the entry just written).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from imgsent.config import WEIGHTS_NAME, ModelConfig
from imgsent.engines.export import EXPORT_FORMAT, OPSET, export_onnx
from imgsent.environment import cache_home
from imgsent.errors import EngineError, InvalidConfigError
from imgsent.hashing import file_sha256
from imgsent.runtime import capped_threads

if TYPE_CHECKING:
    from imgsent.models.sentiment import SentimentModel

KEEP_ENTRIES = 8
"""Entries kept after pruning: the most recently used ones."""
MAX_BYTES = 5 * 1024**3
"""Total size kept after pruning, in bytes (5 GiB; a ViT-L/16 export is about 1.2 GB)."""
ENGINE_FORMAT = "onnx"
_MANIFEST = "manifest.json"
_FILE = "model.onnx"
_STAGING = ".export-"
_STALE_STAGING_S = 24 * 3600  # a staging folder this old belongs to a process that died


def cache_root() -> Path:
    """``$IMGSENT_CACHE/engines``, else ``$XDG_CACHE_HOME/imgsent/engines``, else ``~/.cache/imgsent/engines``."""
    return cache_home("engines")


def engine_key(config: ModelConfig, tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """The cache key: SHA-256 over the config, the export versions and every tensor in float32.

    ``tensors`` are the network's ``(name, tensor)`` pairs as stored in ``model.safetensors``, in
    any order. Use :func:`model_key` or :func:`folder_key`, which supply them.
    """
    h = hashlib.sha256(f"imgsent-engine|{ENGINE_FORMAT}|export={EXPORT_FORMAT}|opset={OPSET}|torch={torch.__version__}|".encode())
    h.update(json.dumps(config.to_dict(), sort_keys=True).encode())
    with capped_threads(1):  # hundreds of small casts: threads only add wake-up costs, badly so on busy cores
        for name, tensor in sorted(tensors, key=lambda item: item[0]):
            h.update(f"|{name}|{list(tensor.shape)}|".encode())
            h.update(_float32_bytes(tensor))
    return h.hexdigest()


def _float32_bytes(tensor: torch.Tensor) -> bytes:
    """The tensor's values as float32 bytes (cast only when stored otherwise, e.g. float16)."""
    t = tensor.detach().cpu()
    return (t if t.dtype == torch.float32 else t.float()).contiguous().numpy().tobytes()


def model_key(model: SentimentModel) -> str:
    """:func:`engine_key` of a loaded model."""
    return engine_key(model.config, model.net.state_dict().items())


def folder_key(folder: str | os.PathLike[str]) -> str:
    """:func:`engine_key` of a model folder, reading one tensor at a time (no torch network is built).

    Raises:
        InvalidConfigError: ``config.json`` is invalid or ``model.safetensors`` is unreadable.
    """
    from safetensors import SafetensorError, safe_open

    folder = Path(folder)
    config = ModelConfig.load(folder)
    try:
        with safe_open(str(folder / WEIGHTS_NAME), framework="pt") as fh:
            return engine_key(config, ((name, fh.get_tensor(name)) for name in fh.keys()))
    except (SafetensorError, OSError) as exc:
        raise InvalidConfigError(f"{folder / WEIGHTS_NAME} is not a readable safetensors file: {exc}") from None


def _manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def lookup(key: str, *, cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The cached file for ``key`` if its manifest matches its size and SHA-256 (and mark it used), else ``None``."""
    folder = (Path(cache_dir) if cache_dir is not None else cache_root()) / key
    path, manifest = folder / _FILE, _manifest(folder)
    try:
        if manifest is None or path.stat().st_size != manifest["size"] or file_sha256(path) != manifest["sha256"]:
            return None
        os.utime(folder / _MANIFEST)  # last used
    except (OSError, KeyError, TypeError):
        return None
    return path


def cached_onnx(
    model: SentimentModel, *, cache_dir: str | os.PathLike[str] | None = None, key: str | None = None,
    source: str | None = None,
) -> Path:
    """The ONNX export of ``model`` from the cache, exporting (and pruning the cache) on first use.

    An entry whose file does not match the size and SHA-256 in its manifest (truncated, edited,
    half-written) is exported again. Writes are atomic (temporary folder, then rename), so
    concurrent processes never see a partial entry.

    Args:
        model: The model to export.
        cache_dir: The cache folder. Default: :func:`cache_root`.
        key: Its :func:`engine_key`, when the caller already has it (:func:`folder_key`).
        source: Where the model came from, shown by ``imgsent cache info``. Default: its architecture.

    Raises:
        MissingExtraError: ``onnx`` is not installed.
        EngineError: The export failed.
    """
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    key = key or model_key(model)
    found = lookup(key, cache_dir=root)
    if found is not None:
        return found
    folder = root / key
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=root))
    try:
        path = export_onnx(model, staging / _FILE)
        manifest = {"sha256": file_sha256(path), "size": path.stat().st_size, "format": ENGINE_FORMAT,
                    "model": source or model.config.architecture.name, "architecture": model.config.architecture.name,
                    "export_format": EXPORT_FORMAT, "opset": OPSET, "torch": torch.__version__}
        (staging / _MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a corrupt entry
        try:
            staging.rename(folder)
        except OSError:  # another process won the race; use its entry if it is sound
            if lookup(key, cache_dir=root) is None:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    found = lookup(key, cache_dir=root)
    if found is None:
        raise EngineError(f"The engine cache entry {folder} could not be written or verified.")
    prune_cache(cache_dir=root, protect=(key,))
    return found


@dataclass(frozen=True)
class CacheEntry:
    """One entry of the engine cache.

    Attributes:
        key: The :func:`engine_key` (the entry's folder name).
        model: Where the model came from (a folder path, or its architecture).
        engine_format: The exported file's format, e.g. ``"onnx"``.
        size: Bytes on disk, all files of the entry.
        last_used: When a process last loaded it (UTC).
        path: The entry's folder.
    """

    key: str
    model: str
    engine_format: str
    size: int
    last_used: datetime
    path: Path


def cache_entries(*, cache_dir: str | os.PathLike[str] | None = None) -> list[CacheEntry]:
    """Every entry of the engine cache, most recently used first (half-written exports are skipped).

    Example:
        >>> total = sum(entry.size for entry in cache_entries())
    """
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    if not root.is_dir():
        return []
    entries = []
    for folder in root.iterdir():
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        manifest = _manifest(folder) or {}
        try:
            size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
            used = (folder / _MANIFEST if (folder / _MANIFEST).exists() else folder).stat().st_mtime
        except OSError:  # removed meanwhile by another process
            continue
        entries.append(CacheEntry(
            key=folder.name, model=str(manifest.get("model") or manifest.get("architecture") or "?"),
            engine_format=str(manifest.get("format", ENGINE_FORMAT)), size=size,
            last_used=datetime.fromtimestamp(used, tz=timezone.utc), path=folder,
        ))
    return sorted(entries, key=lambda e: e.last_used, reverse=True)


def remove_entries(entries: Iterable[CacheEntry]) -> list[CacheEntry]:
    """Delete these entries; returns the ones that were removed (one already gone is skipped)."""
    removed = []
    for entry in entries:
        if entry.path.is_dir():
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry)
    return removed


def clear_cache(
    *, older_than_days: float | None = None, cache_dir: str | os.PathLike[str] | None = None, dry_run: bool = False
) -> list[CacheEntry]:
    """Remove every entry, or only those not used for ``older_than_days`` days.

    Args:
        older_than_days: Keep entries used more recently than this. Default ``None``: remove all.
        cache_dir: The cache folder. Default: :func:`cache_root`.
        dry_run: Only return what would be removed.

    Returns:
        The entries removed (or that would be), most recently used first.

    Raises:
        InvalidConfigError: ``older_than_days`` is negative or not a number.

    Example:
        >>> removed = clear_cache(older_than_days=30)  # doctest: +SKIP
    """
    if older_than_days is not None:
        from imgsent.checks import Range

        Range(float, 0, float("inf")).check(older_than_days, "older_than_days")
    now = time.time()
    chosen = [e for e in cache_entries(cache_dir=cache_dir)
              if older_than_days is None or now - e.last_used.timestamp() > older_than_days * 86400]
    if dry_run:
        return chosen
    _remove_stale_staging(Path(cache_dir) if cache_dir is not None else cache_root(), now)
    return remove_entries(chosen)


def prune_cache(
    *, keep: int = KEEP_ENTRIES, max_bytes: int = MAX_BYTES, cache_dir: str | os.PathLike[str] | None = None,
    protect: Iterable[str] = (),
) -> list[CacheEntry]:
    """Keep the ``keep`` most recently used entries within ``max_bytes``; remove the rest.

    Entries whose key is in ``protect`` are never removed. Called after every new export.

    Returns:
        The entries removed.
    """
    protected = set(protect)
    kept, total, dropped = 0, 0, []
    for entry in cache_entries(cache_dir=cache_dir):
        if entry.key in protected or (kept < keep and total + entry.size <= max_bytes):
            kept, total = kept + 1, total + entry.size
        else:
            dropped.append(entry)
    _remove_stale_staging(Path(cache_dir) if cache_dir is not None else cache_root(), time.time())
    return remove_entries(dropped)


def _remove_stale_staging(root: Path, now: float) -> None:
    """Delete half-written exports left by processes that died a day ago or more."""
    for folder in root.glob(f"{_STAGING}*") if root.is_dir() else ():
        try:
            if now - folder.stat().st_mtime > _STALE_STAGING_S:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


__all__ = [
    "CacheEntry", "KEEP_ENTRIES", "MAX_BYTES", "cache_entries", "cache_root", "cached_onnx", "clear_cache",
    "engine_key", "folder_key", "lookup", "model_key", "prune_cache", "remove_entries",
]
