"""The only module that talks to the Hugging Face Hub.

It turns a model name, a local folder or a Hub repo id into a local folder holding
``config.json`` and ``model.safetensors``, pre-fetches models for offline machines,
publishes model folders and lists the models in the local cache. Every transfer goes
through ``huggingface_hub`` (``snapshot_download``, ``HfApi``, ``scan_cache_dir``),
so its cache layout, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN`` and timeout
settings all apply. Weights are accepted in safetensors format only: pickle
checkpoints are refused, never loaded.

Errors from ``huggingface_hub`` are translated into imgsent's typed errors:
a missing repo, revision or file raises :class:`~imgsent.errors.ModelNotFoundError`;
an unreachable or failing server raises :class:`~imgsent.errors.HubError`.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgsent.config import CONFIG_NAME, WEIGHTS_NAME
from imgsent.errors import HubError, ImgsentError, ModelNotFoundError, UnsafeWeightsError

if TYPE_CHECKING:
    from huggingface_hub import HfApi

PACKAGE_DEFAULT = "package:default"
"""Registry value meaning "the model folder shipped inside the imgsent package"."""
ALLOW_PATTERNS: tuple[str, ...] = (CONFIG_NAME, WEIGHTS_NAME, "README.md")
"""The only files downloaded from, or uploaded to, a model repo."""
PICKLE_SUFFIXES: tuple[str, ...] = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
"""Weight formats that need unpickling, which imgsent refuses."""

_REPO_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1 = re.compile(r"[0-9a-f]{40}")
_CONVERT_HINT = (
    "imgsent never unpickles weights. Convert them once, in an environment you trust:\n"
    "    import torch; from safetensors.torch import save_file\n"
    "    save_file(torch.load('pytorch_model.bin', weights_only=True), 'model.safetensors')"
)
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

    Returns:
        The model folder.

    Raises:
        ModelNotFoundError: Unknown name, missing folder or files, missing repo, revision or
            file, or offline with nothing cached.
        UnsafeWeightsError: The folder or repo only has pickle weights (``.bin``, ``.pt``, ...).
        HubError: The Hub could not be reached or failed, and nothing usable was cached.

    Example:
        >>> folder = resolve_model_dir("acme/imgsent-lite0", revision="v1")  # doctest: +SKIP
        >>> sorted(p.name for p in folder.iterdir())  # doctest: +SKIP
        ['README.md', 'config.json', 'model.safetensors']
    """
    if name_or_path is None:
        return _package_default()
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ModelNotFoundError(
            f"name_or_path must be a model name, a folder or a Hub repo id, got "
            f"{type(name_or_path).__name__} ({name_or_path!r:.80})."
        )
    known = _known_models()
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in known:
        target = known[name_or_path]
        if target == PACKAGE_DEFAULT:
            return _package_default()
        if target.startswith("paper:"):  # the authors' Keras students: downloaded, converted, cached
            from imgsent.convert.paper import paper_model_dir

            return paper_model_dir(target[6:], cache_dir=cache_dir, local_files_only=_offline(local_files_only))
        text = target
    elif os.path.exists(os.path.expanduser(text)):
        return _validate_local(Path(text).expanduser())
    elif not isinstance(name_or_path, str) or _looks_like_path(text):
        raise ModelNotFoundError(
            f"No model folder at {text!r}. Pass an existing folder holding {CONFIG_NAME} and "
            f"{WEIGHTS_NAME}, a known model name ({_names(known)}), or a Hub repo id like 'owner/name'."
        )
    _check_repo_id(text, known)
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
        name, revision=revision, cache_dir=cache_dir, token=token, local_files_only=False, endpoint=endpoint
    )


def push_to_hub(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    token: str | bool | None = None,
    revision: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload imgsent model",
    create_repo: bool = True,
    endpoint: str | None = None,
) -> str:
    """Upload a model folder (``config.json``, ``model.safetensors``, optional ``README.md``).

    Args:
        folder: A folder written by ``SentimentModel.save_pretrained``.
        repo_id: Target repo, ``"owner/name"``.
        token: Hub token with write access; ``None`` uses ``HF_TOKEN`` or the saved login.
        revision: Branch to commit to, created from ``main`` if missing. Defaults to ``None`` (``"main"``).
        private: Visibility of a newly created repo. Defaults to ``None`` (the Hub's default).
        commit_message: Commit summary. Defaults to ``"Upload imgsent model"``.
        create_repo: Create the repo if it does not exist. Defaults to ``True``.
        endpoint: Hub URL. Defaults to ``None`` (``HF_ENDPOINT`` or https://huggingface.co).

    Returns:
        The URL of the new commit.

    Raises:
        ModelNotFoundError: ``folder`` lacks ``config.json`` or ``model.safetensors``, or the repo
            does not exist and ``create_repo=False``.
        UnsafeWeightsError: ``folder`` contains pickle files.
        HubError: The upload failed (network, permissions, server error).

    Example:
        >>> push_to_hub("runs/lite0/export", "acme/imgsent-lite0")  # doctest: +SKIP
        'https://huggingface.co/acme/imgsent-lite0/commit/5d1e...'
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelNotFoundError(f"Cannot push {os.fspath(folder)!r}: it is not a folder.")
    pickles = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise UnsafeWeightsError(
            f"Refusing to push {os.fspath(folder)!r}: it contains pickle files {pickles}. "
            "Remove them; imgsent models ship safetensors weights only."
        )
    _validate_local(path)
    if not isinstance(repo_id, str) or not _is_repo_id(repo_id):
        raise ModelNotFoundError(
            f"Invalid Hub repo id {repo_id!r}: expected 'owner/name' (letters, digits, '-', '_' and '.')."
        )
    api = _api(token=token, endpoint=endpoint)
    try:
        if create_repo:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=str(revision), exist_ok=True, repo_type="model")
        info = api.upload_folder(
            folder_path=path, repo_id=repo_id, repo_type="model", revision=revision,
            commit_message=commit_message, allow_patterns=list(ALLOW_PATTERNS),
        )
    except Exception as exc:
        raise _translate(exc, repo_id=repo_id, revision=revision, token=token, action="push to") from exc
    return str(getattr(info, "commit_url", info))


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


# ---------------------------------------------------------------------- helpers


def _package_default() -> Path:
    """Return the model folder shipped in the package."""
    folder = Path(__file__).parent / "weights" / "default"
    if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise ModelNotFoundError(
            f"The packaged default model is missing from {folder} (it needs {CONFIG_NAME} and "
            f"{WEIGHTS_NAME}). Reinstall imgsent, or pass a model folder or Hub repo id."
        )
    return folder


def _known_models() -> dict[str, str]:
    """Return the registry of model names."""
    from imgsent.registry import KNOWN_MODELS

    return dict(KNOWN_MODELS)


def _names(known: dict[str, str]) -> str:
    """Format the known model names for messages."""
    return ", ".join(repr(n) for n in sorted(known)) or "none registered"


def _looks_like_path(text: str) -> bool:
    """Whether a string is meant as a filesystem path rather than a name or repo id."""
    separators = {os.sep, os.altsep or os.sep, "\\", ":"} - {"/"}
    return (
        text.startswith((".", "/", "~"))
        or text.endswith("/")
        or text.count("/") > 1
        or any(sep in text for sep in separators)
    )


def _is_repo_id(text: str) -> bool:
    """Whether ``text`` is a well-formed ``owner/name`` Hub repo id."""
    parts = text.split("/")
    return len(parts) == 2 and all(_REPO_PART.fullmatch(p) and "--" not in p and ".." not in p for p in parts)


def _check_repo_id(text: str, known: dict[str, str]) -> None:
    """Raise ModelNotFoundError unless ``text`` is a well-formed ``owner/name`` repo id."""
    if _is_repo_id(text):
        return
    hint = ""
    close = difflib.get_close_matches(text, list(known), n=1)
    if close:
        hint = f" Did you mean {close[0]!r}?"
    raise ModelNotFoundError(
        f"Unknown model {text!r}: it is not a known name, an existing folder or a Hub repo id "
        f"('owner/name', letters, digits, '-', '_' and '.').{hint} Known names: {_names(known)}."
    )


def _validate_local(folder: Path) -> Path:
    """Check a local model folder and return it."""
    if folder.is_file():
        if folder.suffix in PICKLE_SUFFIXES:
            raise UnsafeWeightsError(f"{os.fspath(folder)!r} is a pickle checkpoint. {_CONVERT_HINT}")
        raise ModelNotFoundError(
            f"{os.fspath(folder)!r} is a file; pass the folder that holds {CONFIG_NAME} and {WEIGHTS_NAME}."
        )
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if (folder / WEIGHTS_NAME).is_file() and (folder / CONFIG_NAME).is_file():
        return folder
    if not (folder / WEIGHTS_NAME).is_file():
        pickles = [n for n in present if n.endswith(PICKLE_SUFFIXES)]
        if pickles:
            raise UnsafeWeightsError(
                f"{os.fspath(folder)!r} has pickle weights {pickles} but no {WEIGHTS_NAME}. {_CONVERT_HINT}"
            )
    missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if not (folder / n).is_file()]
    raise ModelNotFoundError(
        f"{os.fspath(folder)!r} is not an imgsent model folder: missing {missing} (found {present[:10]}). "
        "Write one with SentimentModel.save_pretrained(folder)."
    )


def _api(*, token: str | bool | None, endpoint: str | None) -> HfApi:
    """Build an HfApi client tagged with imgsent's name and version."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token, library_name="imgsent", library_version=_version())


def _version() -> str:
    """Return the installed imgsent version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imgsent")
    except PackageNotFoundError:
        return "0+unknown"


def _offline(local_files_only: bool | None) -> bool:
    """Whether this call must not use the network."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(local_files_only) or bool(constants.HF_HUB_OFFLINE) or env


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

    offline = _offline(local_files_only)
    options: dict[str, Any] = {} if local_files_only is None and not offline else {"local_files_only": offline}
    if cache_dir is not None:
        options["cache_dir"] = os.fspath(Path(cache_dir).expanduser())
    try:
        folder = Path(
            snapshot_download(
                repo_id, repo_type="model", revision=revision, token=token, endpoint=endpoint,
                allow_patterns=list(ALLOW_PATTERNS), library_name="imgsent", library_version=_version(), **options,
            )
        )
    except Exception as exc:
        raise _translate(exc, repo_id=repo_id, revision=revision, token=token, offline=offline) from exc
    if (folder / WEIGHTS_NAME).is_file() and (folder / CONFIG_NAME).is_file():
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            _verify_blob(folder / name, repo_id=repo_id)
        return folder
    where = f"{repo_id!r}" + (f" at revision {revision!r}" if revision else "")
    files = [] if offline else _list_files(repo_id, revision=revision, token=token, endpoint=endpoint)
    pickles = [f for f in files if f.endswith(PICKLE_SUFFIXES)]
    if pickles and WEIGHTS_NAME not in files:
        raise UnsafeWeightsError(f"Hub repo {where} only has pickle weights {pickles}. {_CONVERT_HINT}")
    missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if not (folder / n).is_file()]
    listing = f" It holds {files[:10]}." if files else ""
    raise ModelNotFoundError(
        f"Hub repo {where} is not an imgsent model: missing {missing}.{listing} "
        "Push a folder written by SentimentModel.save_pretrained with imgsent.hub.push_to_hub."
    )


def _list_files(repo_id: str, *, revision: str | None, token: str | bool | None, endpoint: str | None) -> list[str]:
    """Return the repo's file names, or [] if the Hub cannot tell."""
    try:
        return list(_api(token=token, endpoint=endpoint).list_repo_files(repo_id, revision=revision))
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
    with blob.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != blob.name:
        for path in (file, blob):
            path.unlink(missing_ok=True)
        raise HubError(
            f"The downloaded {file.name} of {repo_id!r} does not match its checksum "
            f"(expected {blob.name}, got {digest.hexdigest()}); the corrupt copy was deleted. "
            "Download again; if it keeps failing, the server or a proxy is serving bad data."
        )
    _verified_blobs.add(key)


def _translate(
    exc: BaseException,
    *,
    repo_id: str,
    revision: str | None,
    token: str | bool | None,
    offline: bool = False,
    action: str = "download",
) -> ImgsentError:
    """Map a huggingface_hub / transport error to an imgsent error with a fix in its message."""
    from huggingface_hub import errors as hf

    if isinstance(exc, ImgsentError):
        return exc
    rev, detail = revision or "main", _first_line(exc, token)
    what = f"{repo_id!r} (revision {rev!r})"
    if isinstance(exc, hf.GatedRepoError):
        return ModelNotFoundError(f"Hub repo {repo_id!r} is gated: accept its terms on the Hub, then pass token=...")
    if isinstance(exc, hf.RepositoryNotFoundError):
        return ModelNotFoundError(
            f"Hub repo {repo_id!r} was not found. Check the spelling ('owner/name'); if the repo is private, "
            f"pass token=... or set HF_TOKEN. Known model names: {_names(_known_models())}."
        )
    if isinstance(exc, hf.RevisionNotFoundError):
        return ModelNotFoundError(
            f"Revision {rev!r} does not exist in Hub repo {repo_id!r}. Pass an existing branch, tag or "
            "full commit sha as revision=..., or revision=None for 'main'."
        )
    if isinstance(exc, (hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled)):
        chain = _causes(exc)
        if offline or any(isinstance(e, hf.OfflineModeIsEnabled) for e in chain):
            return ModelNotFoundError(
                f"Hub repo {what} is not in the local cache and downloads are off (HF_HUB_OFFLINE=1 or "
                f"local_files_only=True). Run `imgsent download {repo_id}` on a machine with network access "
                "first, or unset HF_HUB_OFFLINE."
            )
        cause = next((e for e in chain if not isinstance(e, hf.LocalEntryNotFoundError)), exc)
        return HubError(
            f"Could not {action} {what}: the Hub failed or could not be reached ({_first_line(cause, token)}) "
            "and no cached copy exists. Check your connection or HF_ENDPOINT and retry later; to work "
            f"offline, run `imgsent download {repo_id}` beforehand."
        )
    if isinstance(exc, hf.EntryNotFoundError):
        return ModelNotFoundError(
            f"Hub repo {what} has no such file: {detail}. A model repo needs {CONFIG_NAME} and {WEIGHTS_NAME}."
        )
    if isinstance(exc, hf.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return HubError(
                f"The Hub refused to {action} {repo_id!r} (HTTP {status}): pass a token with the right "
                "permissions as token=... or set HF_TOKEN."
            )
        return HubError(f"The Hub failed to {action} {what}: HTTP {status} ({detail}). Retry later.")
    if isinstance(exc, (OSError, *_transport_errors())):
        return HubError(
            f"Could not {action} {what}: {type(exc).__name__}: {detail}. "
            "Check your connection or HF_ENDPOINT and retry; nothing partial was kept in the cache."
        )
    if isinstance(exc, ValueError):
        return ModelNotFoundError(f"Cannot {action} {what}: {detail}")
    return HubError(f"Unexpected error while trying to {action} {what}: {type(exc).__name__}: {detail}")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Return the network error base classes of the HTTP clients already loaded by huggingface_hub."""
    bases = (getattr(sys.modules.get(m), "TransportError", None) for m in ("httpx2", "httpx"))
    return tuple(b for b in bases if isinstance(b, type))


def _causes(exc: BaseException) -> list[BaseException]:
    """Return ``exc`` followed by its chain of causes."""
    chain, seen = [exc], {id(exc)}
    while (nxt := chain[-1].__cause__ or chain[-1].__context__) is not None and id(nxt) not in seen:
        chain.append(nxt)
        seen.add(id(nxt))
    return chain


def _first_line(exc: BaseException, token: str | bool | None) -> str:
    """Return the first meaningful line of an error message, with the token masked."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0].rstrip(".") if lines else type(exc).__name__
    if isinstance(token, str) and token:
        text = text.replace(token, "***")
    return text[:300]
