"""Name resolution: the packaged model, known names, local folders and well-formed repo ids."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from imgsent.config import CONFIG_NAME, WEIGHTS_NAME
from imgsent.errors import ModelNotFoundError, UnsafeWeightsError
from imgsent.registry import KNOWN_MODELS, ModelSource

PICKLE_SUFFIXES: tuple[str, ...] = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
"""Weight formats that need unpickling, which imgsent refuses."""
CONVERT_HINT = (
    "imgsent never unpickles weights. Convert them once, in an environment you trust:\n"
    "    import torch; from safetensors.torch import save_file\n"
    "    save_file(torch.load('pytorch_model.bin', weights_only=True), 'model.safetensors')"
)
"""How to turn a pickle checkpoint into safetensors, appended to refusals."""

_REPO_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")


def package_default(name: str = "default") -> Path:
    """Return a model folder shipped in the package."""
    folder = Path(__file__).parents[1] / "weights" / name
    if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise ModelNotFoundError(
            f"The packaged default model is missing from {folder} (it needs {CONFIG_NAME} and "
            f"{WEIGHTS_NAME}). Reinstall imgsent, or pass a model folder or Hub repo id."
        )
    return folder


def known_models() -> dict[str, ModelSource]:
    """Return the registry of model names."""
    return dict(KNOWN_MODELS)


def format_names(known: dict[str, ModelSource]) -> str:
    """Format the known model names for messages."""
    return ", ".join(repr(n) for n in sorted(known)) or "none registered"


def looks_like_path(text: str) -> bool:
    """Whether a string is meant as a filesystem path rather than a name or repo id."""
    separators = {os.sep, os.altsep or os.sep, "\\", ":"} - {"/"}
    return (
        text.startswith((".", "/", "~"))
        or text.endswith("/")
        or text.count("/") > 1
        or any(sep in text for sep in separators)
    )


def is_repo_id(text: str) -> bool:
    """Whether ``text`` is a well-formed ``owner/name`` Hub repo id."""
    parts = text.split("/")
    return len(parts) == 2 and all(_REPO_PART.fullmatch(p) and "--" not in p and ".." not in p for p in parts)


def check_repo_id(text: str, known: dict[str, ModelSource]) -> None:
    """Raise ModelNotFoundError unless ``text`` is a well-formed ``owner/name`` repo id."""
    if is_repo_id(text):
        return
    hint = ""
    close = difflib.get_close_matches(text, list(known), n=1)
    if close:
        hint = f" Did you mean {close[0]!r}?"
    raise ModelNotFoundError(
        f"Unknown model {text!r}: it is not a known name, an existing folder or a Hub repo id "
        f"('owner/name', letters, digits, '-', '_' and '.').{hint} Known names: {format_names(known)}."
    )


def validate_local(folder: Path) -> Path:
    """Check a local model folder and return it."""
    if folder.is_file():
        if folder.suffix in PICKLE_SUFFIXES:
            raise UnsafeWeightsError(f"{os.fspath(folder)!r} is a pickle checkpoint. {CONVERT_HINT}")
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
                f"{os.fspath(folder)!r} has pickle weights {pickles} but no {WEIGHTS_NAME}. {CONVERT_HINT}"
            )
    missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if not (folder / n).is_file()]
    raise ModelNotFoundError(
        f"{os.fspath(folder)!r} is not an imgsent model folder: missing {missing} (found {present[:10]}). "
        "Write one with SentimentModel.save_pretrained(folder)."
    )


def model_display_name(model: str | os.PathLike[str] | None) -> str:
    """How a run names its model: ``"default"``, a known name or repo id, or a folder's absolute path."""
    if model is None:
        return "default"
    text = os.fspath(model)
    return os.path.abspath(text) if os.path.isdir(os.path.expanduser(text)) else text


def snapshot_commit(folder: os.PathLike[str] | str, requested: str | None) -> str | None:
    """The commit sha of a Hub cache snapshot folder (``.../snapshots/<sha>``), else ``requested``."""
    path = os.path.normpath(os.fspath(folder))
    if os.path.basename(os.path.dirname(path)) == "snapshots":
        return os.path.basename(path)
    return requested
