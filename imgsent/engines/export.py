"""ONNX export of a model, and the export cache that ONNX Runtime and OpenVINO load from.

The exported graph takes normalised float32 pixels ``[batch, 3, S, S]`` (input ``pixels``,
dynamic batch) and returns softmax probabilities ``[batch, 3]`` (output ``probabilities``).
The preprocessing that turns an image into that input (size, resize mode, filter, mean, std)
and the labels are written into the file's metadata, so the file is usable outside Python.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from imgsent.config import PreprocessConfig
from imgsent.errors import EngineError, require_extra

if TYPE_CHECKING:
    from imgsent.models.sentiment import SentimentModel

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
FEATURES_NAME = "features"
GRAPHS: tuple[str, ...] = ("probabilities", "features")
"""What an exported graph returns: the model's probabilities, or its pooled backbone features (for dedup)."""
OPSET = 17
EXPORT_FORMAT = 1  # bump when the exported graph changes, so old cache entries are not reused
_MANIFEST = "manifest.json"


class _Probabilities(nn.Module):
    """The network, its calibration temperature and a softmax: what the exported graph computes."""

    def __init__(self, model: SentimentModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(pixels).float() / self.model.config.temperature, dim=-1)


class _Features(nn.Module):
    """The network's pooled backbone features ``[batch, feature_dim]``: the ``features`` graph."""

    def __init__(self, model: SentimentModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.net.features(pixels).float()


def export_onnx(
    model: SentimentModel, output: str | os.PathLike[str], *, opset: int = OPSET, graph: str = "probabilities"
) -> Path:
    """Export ``model`` to an ONNX file with a dynamic batch and its preprocessing in the metadata.

    The weights are exported in float32 whatever the model's current dtype; the model itself
    is not modified.

    Args:
        model: The model to export.
        output: Path of the ``.onnx`` file to write (parent folders are created).
        opset: ONNX opset version. Default 17.
        graph: ``"probabilities"`` (default) or ``"features"``: the pooled backbone features
            ``[batch, feature_dim]`` (output ``features``), used by near-duplicate removal.

    Returns:
        The path written.

    Raises:
        MissingExtraError: ``onnx`` is not installed (``pip install 'imgsent[cpu]'``).
        EngineError: The exporter failed on this model.

    Example:
        >>> import onnx
        >>> from imgsent.models.sentiment import SentimentModel
        >>> path = export_onnx(SentimentModel.from_pretrained(), "model.onnx")
        >>> {p.key: p.value for p in onnx.load(path).metadata_props}["imgsent.mean"]
        '[0.5, 0.5, 0.5]'
    """
    require_extra("onnx", "cpu")
    import copy

    import onnx

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if graph not in GRAPHS:
        raise EngineError(f"Unknown graph {graph!r}; use one of {list(GRAPHS)}.")
    wrapper = _Features if graph == "features" else _Probabilities
    net = wrapper(copy.deepcopy(model).float().eval().to("cpu", memory_format=torch.contiguous_format))
    out_name = FEATURES_NAME if graph == "features" else OUTPUT_NAME
    size = model.config.preprocess.image_size
    example = torch.zeros(2, 3, size, size)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(
                net, (example,), str(output), input_names=[INPUT_NAME], output_names=[out_name],
                dynamic_axes={INPUT_NAME: {0: "batch"}, out_name: {0: "batch"}},
                opset_version=opset, dynamo=False,
            )
    except Exception as exc:  # the exporter raises many untyped errors
        raise EngineError(f"Could not export architecture {model.config.architecture.name!r} to ONNX: {exc}") from None
    proto = onnx.load(str(output))
    proto.doc_string = "imgsent image polarity model: normalised float32 pixels -> probabilities"
    del proto.metadata_props[:]
    metadata = onnx_metadata(model)
    if graph == "features":
        metadata["imgsent.output"] = f"{FEATURES_NAME}: float32 [batch, {model.net.feature_dim}], pooled backbone features"
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(output))
    return output


def onnx_metadata(model: SentimentModel) -> dict[str, str]:
    """The metadata written into an export: preprocessing, labels and architecture, as strings."""
    cfg = model.config
    pre = cfg.preprocess
    return {
        "imgsent.input": f"{INPUT_NAME}: float32 [batch, 3, {pre.image_size}, {pre.image_size}], RGB, "
        "(value / 255 - mean) / std",
        "imgsent.output": f"{OUTPUT_NAME}: float32 [batch, 3], softmax of logits / temperature over labels",
        "imgsent.labels": json.dumps(list(cfg.labels)),
        "imgsent.image_size": str(pre.image_size),
        "imgsent.resize_mode": pre.resize_mode,
        "imgsent.interpolation": pre.interpolation,
        "imgsent.mean": json.dumps(list(pre.mean)),
        "imgsent.std": json.dumps(list(pre.std)),
        "imgsent.architecture": cfg.architecture.name,
        "imgsent.config": json.dumps(cfg.to_dict(), sort_keys=True),
    }


def model_digest(model: SentimentModel) -> str:
    """SHA-256 over the config, every weight (name, dtype, shape, bytes) and the exporter versions."""
    h = hashlib.sha256()
    h.update(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    h.update(f"|format={EXPORT_FORMAT}|opset={OPSET}|torch={torch.__version__}|".encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu", torch.float32).contiguous()
        h.update(f"{name}|{list(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def cache_root() -> Path:
    """``$IMGSENT_CACHE/engines``, else ``$XDG_CACHE_HOME/imgsent/engines``, else ``~/.cache/imgsent/engines``."""
    if os.environ.get("IMGSENT_CACHE"):
        return Path(os.environ["IMGSENT_CACHE"]) / "engines"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "imgsent" / "engines"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _valid_entry(folder: Path) -> Path | None:
    """The cached file if its manifest matches its size and SHA-256, else ``None``."""
    path = folder / "model.onnx"
    try:
        manifest = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
        if path.stat().st_size == manifest["size"] and _file_sha256(path) == manifest["sha256"]:
            return path
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def cached_onnx(
    model: SentimentModel, *, cache_dir: str | os.PathLike[str] | None = None, key: str | None = None,
    graph: str = "probabilities",
) -> Path:
    """The ONNX export of ``model`` from the cache, exporting it on first use.

    Entries are keyed by :func:`model_digest` (or ``key``, a digest of the model's files), so a changed config or weight never reuses a
    stale export. An entry whose file does not match the size and SHA-256 in its manifest
    (truncated, edited, half-written) is exported again. Writes are atomic (temporary folder,
    then rename), so concurrent processes never see a partial entry.

    Raises:
        MissingExtraError: ``onnx`` is not installed.
        EngineError: The export failed.
    """
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    folder = root / ((key or model_digest(model)) + ("" if graph == "probabilities" else f"-{graph}"))
    found = _valid_entry(folder)
    if found is not None:
        return found
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=root))
    try:
        path = export_onnx(model, staging / "model.onnx", graph=graph)
        manifest = {"sha256": _file_sha256(path), "size": path.stat().st_size, "opset": OPSET,
                    "architecture": model.config.architecture.name, "torch": torch.__version__}
        (staging / _MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a corrupt entry
        try:
            staging.rename(folder)
        except OSError:  # another process won the race; use its entry if it is sound
            if _valid_entry(folder) is None:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    found = _valid_entry(folder)
    if found is None:
        raise EngineError(f"The ONNX export cache entry {folder} could not be written or verified.")
    return found


def normalize_numpy(pixels: torch.Tensor, cfg: PreprocessConfig) -> np.ndarray:
    """uint8 batch ``[B, 3, S, S]`` -> contiguous float32 numpy, normalised as in the torch engine."""
    from imgsent.transforms import normalize

    return np.ascontiguousarray(normalize(pixels.contiguous(), cfg).numpy())
