"""Typed errors.

Every error imgsent raises derives from :class:`ImgsentError` and also from the
built-in exception it resembles, so ``except FileNotFoundError`` keeps working.
"""

from __future__ import annotations


class ImgsentError(Exception):
    """Base class of every error raised by imgsent."""


class ModelNotFoundError(ImgsentError, FileNotFoundError):
    """A model name, folder, Hub repo, revision or file could not be found."""


class UnknownArchitectureError(ImgsentError, KeyError):
    """An architecture name is not in the registry."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class UnknownSubsetError(ImgsentError, KeyError):
    """An evaluation report has no subset of the requested name."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class InvalidConfigError(ImgsentError, ValueError):
    """A ``config.json`` or recipe value has the wrong type, range or shape."""


class UnsafeWeightsError(ImgsentError, ValueError):
    """Weights are in a format that would need unpickling, which imgsent refuses."""


class ImageDecodeError(ImgsentError, ValueError):
    """An input could not be turned into an RGB image."""


class HubError(ImgsentError, OSError):
    """The Hugging Face Hub (or a compatible server) failed or could not be reached."""


class MissingExtraError(ImgsentError, ImportError):
    """An optional dependency is missing; the message names the pip extra to install."""


class InputNotFoundError(ImgsentError, FileNotFoundError):
    """Input paths (files, folders or glob patterns) match nothing on disk."""


class OutputNotWritableError(ImgsentError, PermissionError):
    """An output path cannot be written: a directory where a file is expected (or the reverse),
    a parent that is a file, or a folder without write permission."""


class ResumeMismatchError(ImgsentError, ValueError):
    """An output file cannot be resumed safely: other format, model, revision, dtype or protocol."""


class OutputExistsError(ImgsentError, FileExistsError):
    """A results file already holds rows, and the run was asked neither to resume nor to overwrite it."""


class OutputFormatError(ImgsentError, ValueError):
    """An output file's extension names no results format (csv, jsonl), and none was given."""




class ConversionError(ImgsentError, ValueError):
    """A foreign checkpoint (e.g. a Keras ``.h5``) is truncated, foreign, incomplete or of the wrong shape."""


class CorpusError(ImgsentError, ValueError):
    """A corpus file cannot be read at all (individual bad rows are counted, not raised)."""


class TeacherError(ImgsentError, ValueError):
    """A text teacher cannot be used: wrong labels, bad outputs or a mismatched label cache."""


class EmbeddingError(ImgsentError, ValueError):
    """An embedding function returned unusable vectors (wrong shape, NaN or inf)."""


class ResultsFileError(ImgsentError, ValueError):
    """A results file given to ``imgsent report`` is missing or not a classify output."""


class ExplainError(ImgsentError, ValueError):
    """An explanation cannot be computed for this model or input."""


class MergeError(ImgsentError, ValueError):
    """Part files overlap, miss inputs, hold unknown paths, or cannot be read.

    Attributes:
        duplicates: Paths that appear in more than one row.
        missing: Input files that no part has a row for.
        unexpected: Rows whose path is not in the input listing.
    """

    def __init__(
        self, message: str, *, duplicates: tuple[str, ...] | list[str] = (),
        missing: tuple[str, ...] | list[str] = (), unexpected: tuple[str, ...] | list[str] = (),
    ) -> None:
        super().__init__(message)
        self.duplicates = list(duplicates)
        self.missing = list(missing)
        self.unexpected = list(unexpected)


def require_extra(module: str, extra: str) -> None:
    """Raise :class:`MissingExtraError` unless ``module`` is importable."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(
            f"This feature needs the optional package {module!r}. "
            f"Install it with: pip install 'imgsent[{extra}]'"
        )


class EngineError(ImgsentError, RuntimeError):
    """An inference engine could not export, load or run a model."""


class VideoDecodeError(ImageDecodeError):
    """A video or animation cannot be sampled: truncated, no video stream, no frames, too large, or an unknown codec."""
