"""Training checkpoints as safetensors + JSON; nothing is pickled.

A checkpoint is a folder ``<out_dir>/checkpoints/step-<global step, 9 digits>/`` holding:

* ``state.safetensors``: every tensor: ``model.<name>`` (the network's state dict),
  ``optim.<param index>.<key>`` (optimizer state, e.g. ``exp_avg``, ``step``),
  ``rng.torch.rank<r>`` / ``rng.cuda.rank<r>`` (uint8 RNG states of every rank) and
  ``data.bad_train`` / ``data.bad_val`` (uint8 masks of rows whose image did not decode);
* ``state.json``: everything else: position (epoch, step), the training config, metrics history,
  the optimizer's param groups and non-tensor state, and a fingerprint of the data.

The folder is written as ``step-….tmp`` and renamed into place with :func:`os.replace`, so a
folder without the ``.tmp`` suffix is always complete; a run killed mid-write leaves only a
``.tmp`` folder, which is ignored and cleaned up by the next save.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from imgsent.errors import InvalidConfigError

CHECKPOINT_FORMAT = "imgsent-train-checkpoint"
CHECKPOINT_VERSION = 1
TENSORS_NAME = "state.safetensors"
META_NAME = "state.json"
_PREFIX = "step-"


def checkpoint_root(out_dir: str | os.PathLike[str]) -> Path:
    """The folder that holds a run's checkpoints."""
    return Path(out_dir) / "checkpoints"


def list_checkpoints(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first."""
    root = checkpoint_root(out_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and p.name[len(_PREFIX):].isdigit()]
    found = [p for p in found if (p / META_NAME).is_file() and (p / TENSORS_NAME).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX):]))


def latest_checkpoint(out_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint folder, or ``None``."""
    found = list_checkpoints(out_dir)
    return found[-1] if found else None


def save_checkpoint(
    out_dir: str | os.PathLike[str],
    step: int,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    *,
    keep: int = 2,
) -> Path:
    """Write one checkpoint atomically and delete all but the newest ``keep``.

    Returns:
        The checkpoint folder.
    """
    from safetensors.torch import save_file

    root = checkpoint_root(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{_PREFIX}{step:09d}"
    tmp = root / f"{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    save_file(clean, str(tmp / TENSORS_NAME), metadata={"format": CHECKPOINT_FORMAT})
    body = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **meta}
    (tmp / META_NAME).write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    _fsync_dir_files(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(out_dir)[:-max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(f"{_PREFIX}*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    return final


def load_checkpoint(folder: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint folder: its tensors (on CPU) and its JSON metadata.

    Raises:
        InvalidConfigError: The folder is not a readable imgsent checkpoint of this version.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / TENSORS_NAME), device="cpu")
    except (OSError, ValueError, SafetensorError) as exc:
        raise InvalidConfigError(f"{folder} is not a readable training checkpoint: {exc}") from None
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("version") != CHECKPOINT_VERSION:
        raise InvalidConfigError(
            f"{folder / META_NAME} is not an imgsent training checkpoint of version {CHECKPOINT_VERSION} "
            f"(format={meta.get('format')!r}, version={meta.get('version')!r}); start a new run in a new out_dir."
        )
    return tensors, meta


def flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors and a JSON-ready remainder."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Rebuild an ``optimizer.state_dict()`` from :func:`flatten_optimizer`'s output."""
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = tensor
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()}
        for g in meta["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def _fsync_dir_files(folder: Path) -> None:
    """Flush the checkpoint files to disk before the rename makes them visible."""
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
