"""The paper's own students, loadable by name: download the Keras ``.h5`` once, convert, cache.

``paper-vit-b32`` and its siblings name the ViT students released by the authors as GitHub
release assets. The first use downloads the ``.h5`` (resumable, size-checked, with a progress
bar on stderr), converts it with :func:`imgsent.convert.convert_keras` and keeps only the
converted folder, so later uses work offline. Set ``IMGSENT_PAPER_MODELS_URL`` to use a mirror.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from imgsent.config import CONFIG_NAME, WEIGHTS_NAME
from imgsent.errors import ConversionError, HubError, ModelNotFoundError

RELEASE_URL = "https://github.com/fabiocarrara/cross-modal-visual-sentiment-analysis/releases/download/v0.1.0"
"""Where the authors publish the ``.h5`` files; override with ``IMGSENT_PAPER_MODELS_URL``."""
URL_ENV = "IMGSENT_PAPER_MODELS_URL"
CACHE_ENV = "IMGSENT_CACHE"


@dataclass(frozen=True)
class PaperModel:
    """One released student and the accuracies the paper reports for it.

    Args:
        name: imgsent's name, e.g. ``"paper-vit-b32"``.
        filename: Release asset, e.g. ``"ViT_B32.h5"``.
        preset: Converter preset, a key of :data:`imgsent.convert.PRESETS`.
        twitter1: Paper-reported Twitter I accuracy (%) at 5 / >=4 / >=3-agree.

    Example:
        >>> PAPER_MODELS["paper-vit-l16"].twitter1
        (87.8, 84.8, 81.9)
    """

    name: str
    filename: str
    preset: str
    twitter1: tuple[float, float, float]

    def summary(self) -> str:
        """One line for model listings."""
        five, four, three = self.twitter1
        return f"{self.filename} (paper-reported Twitter I: {five} / {four} / {three} % at 5 / 4 / 3-agree)"


PAPER_MODELS: dict[str, PaperModel] = {
    "paper-vit-l16": PaperModel("paper-vit-l16", "ViT_L16.h5", "vit-l16", (87.8, 84.8, 81.9)),
    "paper-vit-b16": PaperModel("paper-vit-b16", "ViT_B16.h5", "vit-b16", (87.0, 83.1, 79.4)),
    "paper-vit-b32": PaperModel("paper-vit-b32", "ViT_B32.h5", "vit-b32", (86.5, 82.6, 78.9)),
    "paper-vit-l32": PaperModel("paper-vit-l32", "ViT_L32.h5", "vit-l32", (85.0, 82.4, 79.4)),
}


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder holding converted paper models: ``cache_dir/imgsent-paper``, else ``$IMGSENT_CACHE/paper``,
    else ``~/.cache/imgsent/paper``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser() / "imgsent-paper"
    base = os.environ.get(CACHE_ENV) or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "imgsent")
    return Path(base).expanduser() / "paper"


def paper_model_dir(
    name: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """Return the converted folder of a paper model, downloading and converting it on first use.

    Args:
        name: A key of :data:`PAPER_MODELS`, e.g. ``"paper-vit-b32"``.
        cache_dir: Cache folder. Defaults to ``None`` (``$IMGSENT_CACHE/paper`` or ``~/.cache/imgsent/paper``).
        local_files_only: ``True`` never uses the network (also ``HF_HUB_OFFLINE=1``).

    Returns:
        A model folder with ``config.json``, ``model.safetensors`` and ``README.md``.

    Raises:
        ModelNotFoundError: Unknown name; offline and not converted yet; or the server has no such file.
        HubError: The download failed (connection dropped, body truncated, server error). The
            partial download is kept and the next call resumes it.
        ConversionError: The downloaded file is not the expected Keras student; it is deleted.

    Example:
        >>> paper_model_dir("paper-vit-b32")  # doctest: +SKIP
        PosixPath('/home/me/.cache/imgsent/paper/paper-vit-b32')
    """
    from filelock import FileLock

    if name not in PAPER_MODELS:
        raise ModelNotFoundError(f"Unknown paper model {name!r}. Valid names: {', '.join(PAPER_MODELS)}.")
    entry = PAPER_MODELS[name]
    root = cache_root(cache_dir)
    folder = root / name
    if _complete(folder):
        return folder
    if _offline(local_files_only):
        raise ModelNotFoundError(
            f"{name!r} is not converted in {root} yet and downloads are off (HF_HUB_OFFLINE=1 or "
            f"local_files_only=True). Run `imgsent download {name}` once on a machine with network access."
        )
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{name}.lock")):
        if _complete(folder):  # another process finished it while we waited
            return folder
        h5 = _download(entry, root / "downloads")
        from imgsent.convert.keras import convert_keras

        try:
            convert_keras(h5, folder, preset=entry.preset)
        except ConversionError as exc:
            h5.unlink(missing_ok=True)
            raise ConversionError(
                f"The file downloaded for {name!r} from {_url(entry)} is not the expected Keras student and was "
                f"deleted: {exc}"
            ) from None
        h5.unlink(missing_ok=True)  # the converted folder is all that is needed from now on
    return folder


def paper_cached(name: str, cache_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether a paper model is already converted in the cache (so it loads offline)."""
    return _complete(cache_root(cache_dir) / name)


def _complete(folder: Path) -> bool:
    return (folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file()


def _offline(local_files_only: bool | None) -> bool:
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(local_files_only) or env


def _url(entry: PaperModel) -> str:
    return f"{os.environ.get(URL_ENV, RELEASE_URL).rstrip('/')}/{entry.filename}"


def _download(entry: PaperModel, folder: Path) -> Path:
    """Download (or resume) one release file; rename it into place only once its size checks out."""
    from huggingface_hub import errors as hf
    from huggingface_hub.file_download import http_get

    url = _url(entry)
    folder.mkdir(parents=True, exist_ok=True)
    final, part = folder / entry.filename, folder / (entry.filename + ".incomplete")
    if final.is_file():
        return final
    resume = part.stat().st_size if part.is_file() else 0
    try:
        with part.open("ab") as fh:
            http_get(url, fh, resume_size=resume, displayed_filename=entry.filename)
    except hf.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 416:  # the partial file is not a prefix of what the server has now
            part.unlink(missing_ok=True)
        if status == 404:
            part.unlink(missing_ok=True)
            raise ModelNotFoundError(
                f"{url} was not found (HTTP 404). If you use a mirror, check {URL_ENV}; it must serve "
                f"{entry.filename} at its root."
            ) from None
        raise HubError(f"Downloading {url} failed: HTTP {status}. Retry later; the download resumes.") from None
    except Exception as exc:  # connection dropped, body truncated (size check), timeouts
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise HubError(
            f"Downloading {url} failed ({type(exc).__name__}: {first}). {part.stat().st_size if part.exists() else 0} "
            "bytes are kept; run the same command again to resume."
        ) from None
    os.replace(part, final)
    return final
