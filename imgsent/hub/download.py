"""Resolve a model name to a local folder, downloading Hub snapshots; list the cached models."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgsent.config import CONFIG_NAME, WEIGHTS_NAME
from imgsent.errors import HubError, ModelNotFoundError, UnsafeWeightsError
from imgsent.environment import is_offline
from imgsent.hub.client import ALLOW_PATTERNS, api_client, imgsent_version
from imgsent.hub.names import (
    CONVERT_HINT,
    PICKLE_SUFFIXES,
    check_repo_id,
    format_names,
    known_models,
    looks_like_path,
    package_default,
    validate_local,
)
from imgsent.hashing import update_from_file
from imgsent.hub.translate import translate_error
from imgsent.hub.release import ReleaseConverter, release_model_dir
from imgsent.registry import BundledModel, PaperRelease

_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1 = re.compile(r"[0-9a-f]{40}")
_verified_blobs: set[tuple[str, int, int]] = set()


@dataclass(frozen=True)
class CachedModel:
    """One revision of an imgsent model found in the Hugging Face cache.

    Args:
        repo_id: Hub repo id, e.g. ``"acme/imgsent-lite0"``.
        commit_hash: The 40-character commit sha of this revision.
        refs: Branch or tag names that pointed to this commit when it was downloaded.
        path: The snapshot folder (holds ``config.json`` and ``model.safetensors``).
        size_on_disk: Bytes used by this revision's files.
        last_modified: When the snapshot was last written, as a Unix timestamp.
    """

    repo_id: str
    commit_hash: str
    refs: tuple[str, ...]
    path: Path
    size_on_disk: int
    last_modified: float

    def __str__(self) -> str:
        refs = f" ({', '.join(self.refs)})" if self.refs else ""
        return f"{self.repo_id}@{self.commit_hash[:12]}{refs}"


def resolve_model_dir(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
    local_files_only: bool | None = None,
    endpoint: str | None = None,
    convert: ReleaseConverter | None = None,
) -> Path:
    """Return a local folder holding ``config.json`` and ``model.safetensors``.

    ``name_or_path`` is tried, in order, as: ``None`` (the packaged default model), a name
    from :data:`imgsent.registry.KNOWN_MODELS`, an existing local folder, and a Hub repo
    id of the form ``"owner/name"``, which is downloaded into the Hugging Face cache
    (only ``config.json``, ``model.safetensors`` and ``README.md``).

    Args:
        name_or_path: Model name, folder or Hub repo id. Defaults to ``None``, the packaged model.
        revision: Branch, tag or commit sha of a Hub repo. Defaults to ``None`` (``"main"``).
            Ignored for local folders.
        cache_dir: Hugging Face cache folder. Defaults to ``None`` (``HF_HUB_CACHE``).
        token: Hub token for private repos; ``None`` uses ``HF_TOKEN`` or the saved login.
        local_files_only: ``True`` never touches the network. ``None`` (default) or ``False`` ask
            the Hub unless ``HF_HUB_OFFLINE=1``; if it cannot be reached, a cached copy is used.
        endpoint: Hub URL. Defaults to ``None`` (``HF_ENDPOINT`` or https://huggingface.co).
        convert: Turns a paper model's release file into a folder on first use
            (:data:`imgsent.convert.paper.CONVERTER`). Defaults to ``None``: paper models are only
            found once converted.

    Returns:
        The model folder.

    Raises:
        ModelNotFoundError: Unknown name, missing folder or files, missing repo, revision or
            file, or offline with nothing cached.
        MissingExtraError: A paper model needs converting and ``h5py`` is missing (checked before downloading).
        UnsafeWeightsError: The folder or repo only has pickle weights (``.bin``, ``.pt``, ...).
        HubError: The Hub could not be reached or failed, and nothing usable was cached.

    Example:
        >>> folder = resolve_model_dir("acme/imgsent-lite0", revision="v1")  # doctest: +SKIP
        >>> sorted(p.name for p in folder.iterdir())  # doctest: +SKIP
        ['README.md', 'config.json', 'model.safetensors']
    """
    if name_or_path is None:
        return package_default()
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ModelNotFoundError(
            f"name_or_path must be a model name, a folder or a Hub repo id, got "
            f"{type(name_or_path).__name__} ({name_or_path!r:.80})."
        )
    known = known_models()
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in known:
        target = known[name_or_path]
        if isinstance(target, BundledModel):
            return package_default(target.folder)
        if isinstance(target, PaperRelease):  # the authors' Keras students: downloaded, converted, cached
            return release_model_dir(
                name_or_path, target, convert=convert, cache_dir=cache_dir, local_files_only=local_files_only
            )
        text = target.repo_id
        revision = revision if revision is not None else target.revision
    elif os.path.exists(os.path.expanduser(text)):
        return validate_local(Path(text).expanduser())
    elif not isinstance(name_or_path, str) or looks_like_path(text):
        raise ModelNotFoundError(
            f"No model folder at {text!r}. Pass an existing folder holding {CONFIG_NAME} and "
            f"{WEIGHTS_NAME}, a known model name ({format_names(known)}), or a Hub repo id like 'owner/name'."
        )
    check_repo_id(text, known)
    return _from_hub(
        text, revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only, endpoint=endpoint
    )


def download_model(
    name: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    convert: ReleaseConverter | None = None,
) -> Path:
    """Download a model into the Hugging Face cache so it loads later without network.

    Same resolution rules as :func:`resolve_model_dir`, but always asks the Hub for Hub
    repos (use it before going offline, e.g. through ``imgsent download``). Packaged and
    local models need no download; their folder is validated and returned.

    Args:
        name: Model name, folder or Hub repo id.
        revision: Branch, tag or commit sha. Defaults to ``None`` (``"main"``).
        cache_dir: Hugging Face cache folder. Defaults to ``None`` (``HF_HUB_CACHE``).
        token: Hub token for private repos; ``None`` uses ``HF_TOKEN`` or the saved login.
        endpoint: Hub URL. Defaults to ``None`` (``HF_ENDPOINT`` or https://huggingface.co).
        convert: Converter for paper models, as in :func:`resolve_model_dir`.

    Returns:
        The model folder in the cache.

    Raises:
        ModelNotFoundError: As :func:`resolve_model_dir`; also when ``HF_HUB_OFFLINE=1``
            and the model is not cached yet.
        UnsafeWeightsError: The repo only has pickle weights.
        HubError: The Hub could not be reached or failed.

    Example:
        >>> download_model("acme/imgsent-lite0", revision="v1")  # doctest: +SKIP
        PosixPath('/home/me/.cache/huggingface/hub/models--acme--imgsent-lite0/snapshots/3f1c...')
    """
    return resolve_model_dir(
        name, revision=revision, cache_dir=cache_dir, token=token, local_files_only=False, endpoint=endpoint,
        convert=convert,
    )


def cached_models(cache_dir: str | os.PathLike[str] | None = None) -> list[CachedModel]:
    """List the imgsent models (revisions holding both model files) in the Hugging Face cache.

    Args:
        cache_dir: Hugging Face cache folder. Defaults to ``None`` (``HF_HUB_CACHE``).

    Returns:
        One :class:`CachedModel` per cached revision, sorted by repo id then newest first.
        Empty if the cache does not exist.

    Example:
        >>> [(m.repo_id, m.refs) for m in cached_models()]  # doctest: +SKIP
        [('acme/imgsent-lite0', ('main',))]
    """
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(None if cache_dir is None else Path(cache_dir).expanduser())
    except CacheNotFound:
        return []
    found = [
        CachedModel(repo.repo_id, rev.commit_hash, tuple(sorted(rev.refs)), Path(rev.snapshot_path),
                    rev.size_on_disk, rev.last_modified)
        for repo in info.repos
        if repo.repo_type == "model"
        for rev in repo.revisions
        if {CONFIG_NAME, WEIGHTS_NAME} <= {f.file_name for f in rev.files}
    ]
    return sorted(found, key=lambda m: (m.repo_id, -m.last_modified))


def _from_hub(
    repo_id: str,
    *,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    token: str | bool | None,
    local_files_only: bool | None,
    endpoint: str | None,
) -> Path:
    """Download (or find in the cache) a Hub snapshot and check it holds a model."""
    from huggingface_hub import snapshot_download

    offline = is_offline(local_files_only)
    options: dict[str, Any] = {} if local_files_only is None and not offline else {"local_files_only": offline}
    if cache_dir is not None:
        options["cache_dir"] = os.fspath(Path(cache_dir).expanduser())
    try:
        folder = Path(
            snapshot_download(
                repo_id, repo_type="model", revision=revision, token=token, endpoint=endpoint,
                allow_patterns=list(ALLOW_PATTERNS), library_name="imgsent", library_version=imgsent_version(), **options,
            )
        )
    except Exception as exc:
        raise translate_error(exc, repo_id=repo_id, revision=revision, token=token, offline=offline) from exc
    if (folder / WEIGHTS_NAME).is_file() and (folder / CONFIG_NAME).is_file():
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            _verify_blob(folder / name, repo_id=repo_id)
        return folder
    where = f"{repo_id!r}" + (f" at revision {revision!r}" if revision else "")
    files = [] if offline else _list_files(repo_id, revision=revision, token=token, endpoint=endpoint)
    pickles = [f for f in files if f.endswith(PICKLE_SUFFIXES)]
    if pickles and WEIGHTS_NAME not in files:
        raise UnsafeWeightsError(f"Hub repo {where} only has pickle weights {pickles}. {CONVERT_HINT}")
    missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if not (folder / n).is_file()]
    listing = f" It holds {files[:10]}." if files else ""
    raise ModelNotFoundError(
        f"Hub repo {where} is not an imgsent model: missing {missing}.{listing} "
        "Push a folder written by SentimentModel.save_pretrained with imgsent.hub.push_to_hub."
    )


def _list_files(repo_id: str, *, revision: str | None, token: str | bool | None, endpoint: str | None) -> list[str]:
    """Return the repo's file names, or [] if the Hub cannot tell."""
    try:
        return list(api_client(token=token, endpoint=endpoint).list_repo_files(repo_id, revision=revision))
    except Exception:
        return []


def _verify_blob(file: Path, *, repo_id: str) -> None:
    """Check a cached blob against the checksum it is named after; delete it and raise on mismatch.

    Hub blobs are named by their ETag: the sha256 of the content for large (LFS) files, the
    git blob sha1 for small ones. Other names (copies made where symlinks are unsupported,
    or ETags of non-Hub servers) cannot be checked and are accepted.
    """
    blob = file.resolve()
    if _SHA256.fullmatch(blob.name):
        digest = hashlib.sha256()
    elif _GIT_SHA1.fullmatch(blob.name):
        digest = hashlib.sha1(b"blob %d\0" % blob.stat().st_size)
    else:
        return
    stat = blob.stat()
    key = (os.fspath(blob), stat.st_size, stat.st_mtime_ns)
    if key in _verified_blobs:
        return
    update_from_file(digest, blob)
    if digest.hexdigest() != blob.name:
        for path in (file, blob):
            path.unlink(missing_ok=True)
        raise HubError(
            f"The downloaded {file.name} of {repo_id!r} does not match its checksum "
            f"(expected {blob.name}, got {digest.hexdigest()}); the corrupt copy was deleted. "
            "Download again; if it keeps failing, the server or a proxy is serving bad data."
        )
    _verified_blobs.add(key)
