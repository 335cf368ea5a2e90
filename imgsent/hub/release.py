"""The authors' release files: download once (resumable, size-checked), convert with the caller's converter, cache.

The hub fetches bytes; converting them is the caller's job. :func:`release_model_dir` takes a
:class:`ReleaseConverter` (imgsent's is :data:`imgsent.convert.paper.CONVERTER`), asks it whether
it can run here before anything is downloaded, and keeps only its output folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from imgsent.config import CONFIG_NAME, WEIGHTS_NAME
from imgsent.environment import CACHE_ENV, PAPER_URL_ENV, cache_home, is_offline, paper_models_url
from imgsent.errors import ConversionError, HubError, ModelNotFoundError
from imgsent.hashing import file_sha256
from imgsent.hub.translate import first_line
from imgsent.registry import PaperRelease

PROBE_TIMEOUT = 10.0
"""Seconds to wait for the server to answer before a download starts."""


class ReleaseConverter(Protocol):
    """Turns a downloaded release file into an imgsent model folder."""

    def check(self) -> None:
        """Raise (e.g. :class:`~imgsent.errors.MissingExtraError`) if conversion cannot run here."""

    def __call__(self, file: Path, output: Path, release: PaperRelease) -> object:
        """Write the model folder ``output`` from ``file``; raise ConversionError if the file is wrong."""


def release_cache(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder holding converted paper models: ``cache_dir/imgsent-paper``, else ``<imgsent cache home>/paper``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser() / "imgsent-paper"
    return cache_home("paper")


def release_cached(name: str, cache_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether the paper model ``name`` is converted in the cache already (so it loads offline)."""
    return _complete(release_cache(cache_dir) / name)


def release_url(release: PaperRelease) -> str:
    """The URL a release file is fetched from (``$IMGSENT_PAPER_MODELS_URL`` replaces the folder).

    Example:
        >>> from imgsent.registry import PAPER_RELEASES
        >>> release_url(PAPER_RELEASES["ViT_B32"])  # doctest: +SKIP
        'https://github.com/fabiocarrara/cross-modal-visual-sentiment-analysis/releases/download/v0.1.0/ViT_B32.h5'
    """
    return f"{paper_models_url(release.url)}/{release.filename}"


def release_model_dir(
    name: str,
    release: PaperRelease,
    *,
    convert: ReleaseConverter | None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """Return the converted folder of a paper model, downloading and converting it on first use.

    Args:
        name: The model's name, e.g. ``"paper-vit-b32"``; names its cache folder.
        release: Its release record.
        convert: The converter; ``None`` only finds an already-converted folder.
        cache_dir: Cache folder. Defaults to ``None`` (``$IMGSENT_CACHE/paper``, else ``~/.cache/imgsent/paper``).
        local_files_only: ``True`` never uses the network (also ``HF_HUB_OFFLINE=1``).

    Returns:
        A model folder with ``config.json`` and ``model.safetensors``.

    Raises:
        ModelNotFoundError: Not converted yet and offline, no converter given, or the server has no such file.
        MissingExtraError: The converter cannot run here (raised before any download).
        HubError: The server could not be reached, or the download failed.
        ConversionError: The downloaded file is not the expected one; it is deleted.

    Example:
        >>> from imgsent.convert.paper import CONVERTER
        >>> from imgsent.registry import KNOWN_MODELS
        >>> release_model_dir("paper-vit-b32", KNOWN_MODELS["paper-vit-b32"], convert=CONVERTER)  # doctest: +SKIP
        PosixPath('/home/me/.cache/imgsent/paper/paper-vit-b32')
    """
    from filelock import FileLock

    root = release_cache(cache_dir)
    folder = root / name
    if _complete(folder):
        return folder
    if is_offline(local_files_only):
        raise ModelNotFoundError(
            f"{name!r} is not in the paper-model cache {root} yet and downloads are off (HF_HUB_OFFLINE=1 or "
            f"local_files_only=True). {_transfer_hint(name, root)}"
        )
    if convert is None:
        raise ModelNotFoundError(
            f"{name!r} is not converted in {root} yet and no converter was given. Load it with "
            "Predictor.from_pretrained or SentimentModel.from_pretrained, or run `imgsent download "
            f"{name}`, which download and convert it."
        )
    convert.check()
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{name}.lock")):
        if _complete(folder):  # another process finished it while we waited
            return folder
        file = download_release_file(name, release, root)
        try:
            convert(file, folder, release)
        except ConversionError as exc:
            file.unlink(missing_ok=True)
            raise ConversionError(
                f"The file downloaded for {name!r} from {release_url(release)} is not the expected Keras student "
                f"and was deleted: {exc}"
            ) from None
        file.unlink(missing_ok=True)  # the converted folder is all that is needed from now on
    return folder


def download_release_file(name: str, release: PaperRelease, root: Path) -> Path:
    """Download (or resume) one release file into ``root/downloads``; rename it into place only once its
    size (and sha256, when known) check out.

    The server is asked once, without retries, before the download starts: an unreachable
    server fails at once with one message instead of a series of retries.

    Raises:
        ModelNotFoundError: The server answers 404.
        HubError: The server cannot be reached, fails, or the transfer breaks off.
        ConversionError: The file does not match the release's sha256; it is deleted.
    """
    from huggingface_hub import errors as hf
    from huggingface_hub.file_download import http_get

    url = release_url(release)
    folder = root / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    final, part = folder / release.filename, folder / (release.filename + ".incomplete")
    if final.is_file():
        return final
    resume = part.stat().st_size if part.is_file() else 0
    try:
        _probe(url, resume)
        with part.open("ab") as fh, _quiet_retries():
            http_get(url, fh, resume_size=resume, displayed_filename=release.filename)
    except hf.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (404, 416):  # gone, or the partial file is not a prefix of what the server has now
            part.unlink(missing_ok=True)
        if status == 404:
            raise ModelNotFoundError(
                f"{url} was not found (HTTP 404). If you use a mirror, check {PAPER_URL_ENV}; it must serve "
                f"{release.filename} at its root."
            ) from None
        raise HubError(f"Downloading {url} failed: HTTP {status}. Retry later{_kept(part)}.") from None
    except Exception as exc:  # unreachable, connection dropped, body truncated (size check), timeouts
        detail = f"{type(exc).__name__}: {first_line(exc, None)}"
        if (part.stat().st_size if part.is_file() else 0) <= resume:
            raise HubError(
                f"Cannot reach {url} ({detail}); nothing was downloaded. {_transfer_hint(name, root)} "
                f"Or set {PAPER_URL_ENV} to a reachable mirror."
            ) from None
        raise HubError(f"Downloading {url} failed ({detail}){_kept(part)}.") from None
    if release.sha256 is not None and file_sha256(part) != release.sha256:
        part.unlink(missing_ok=True)
        raise ConversionError(
            f"{url} does not match the release's sha256 {release.sha256}; the download was deleted. "
            f"If you use a mirror ({PAPER_URL_ENV}), it serves a different file."
        )
    os.replace(part, final)
    return final


def _probe(url: str, resume: int) -> None:
    """Ask for one byte, once, without retries: fails fast when the server is unreachable or lacks the file."""
    from huggingface_hub.utils import hf_raise_for_status, http_stream_backoff

    headers = {"Range": f"bytes={resume}-{resume}"}
    with http_stream_backoff("GET", url, headers=headers, max_retries=0, retry_on_exceptions=(),
                             retry_on_status_codes=(), timeout=PROBE_TIMEOUT, follow_redirects=True) as response:
        if response.status_code != 416:  # 416: nothing left past ``resume``; http_get decides what that means
            hf_raise_for_status(response)


@contextlib.contextmanager
def _quiet_retries() -> Iterator[None]:
    """Silence huggingface_hub's per-retry warnings during one transfer; the outcome is reported once."""
    logger = logging.getLogger("huggingface_hub.file_download")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _transfer_hint(name: str, root: Path) -> str:
    return (
        f"On a machine with network, run `imgsent download {name}`, then copy its folder "
        f"~/.cache/imgsent/paper/{name} (${CACHE_ENV}/paper/{name} when {CACHE_ENV} is set) to {root / name} here."
    )


def _kept(part: Path) -> str:
    size = part.stat().st_size if part.is_file() else 0
    return f"; {size} bytes are kept and the next run resumes from there" if size else "; nothing was kept"


def _complete(folder: Path) -> bool:
    return (folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file()
