"""The paper's own students, loadable by name: the hub downloads the Keras ``.h5`` once, this converts it.

``paper-vit-b32`` and its siblings name the ViT students released by the authors as GitHub
release assets; their records are :data:`imgsent.registry.PAPER_RELEASES`. The first use
downloads the ``.h5`` through :mod:`imgsent.hub.release` (resumable, size-checked, with a
progress bar on stderr), converts it with :func:`imgsent.convert.convert_keras` and keeps only
the converted folder, so later uses work offline. Set ``IMGSENT_PAPER_MODELS_URL`` to use a mirror.
"""

from __future__ import annotations

import os
from pathlib import Path

from imgsent.errors import ModelNotFoundError, require_extra
from imgsent.hub.release import release_cached, release_model_dir
from imgsent.registry import KNOWN_MODELS, PaperRelease

PAPER_MODELS: dict[str, PaperRelease] = {n: s for n, s in KNOWN_MODELS.items() if isinstance(s, PaperRelease)}
"""The known names of the authors' students (``paper-vit-l16``, ...), a view of :data:`imgsent.registry.KNOWN_MODELS`."""


class KerasReleaseConverter:
    """Converts a downloaded Keras release file with its preset; needs h5py (``imgsent[convert]``)."""

    def check(self) -> None:
        """Raise MissingExtraError when h5py is not installed, before anything is downloaded."""
        require_extra("h5py", "convert")

    def __call__(self, file: Path, output: Path, release: PaperRelease) -> Path:
        """Convert ``file`` into the model folder ``output`` with the release's preset."""
        from imgsent.convert.keras import convert_keras

        return convert_keras(file, output, preset=release.preset)


CONVERTER = KerasReleaseConverter()
"""The converter :func:`imgsent.hub.resolve_model_dir` is given for paper models."""


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
        MissingExtraError: h5py is missing (checked before downloading).
        HubError: The server could not be reached or the download failed; a partial download is
            kept and the next call resumes it.
        ConversionError: The downloaded file is not the expected Keras student; it is deleted.

    Example:
        >>> paper_model_dir("paper-vit-b32")  # doctest: +SKIP
        PosixPath('/home/me/.cache/imgsent/paper/paper-vit-b32')
    """
    if name not in PAPER_MODELS:
        raise ModelNotFoundError(f"Unknown paper model {name!r}. Valid names: {', '.join(PAPER_MODELS)}.")
    return release_model_dir(
        name, PAPER_MODELS[name], convert=CONVERTER, cache_dir=cache_dir, local_files_only=local_files_only
    )


def paper_cached(name: str, cache_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether a paper model is already converted in the cache (so it loads offline)."""
    return release_cached(name, cache_dir)
