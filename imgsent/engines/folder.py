"""Open an engine straight from a model folder, skipping the torch network when the export is cached.

Building the torch network imports timm (and through it torchvision and torch._dynamo), which
is most of ``imgsent classify``'s start-up. When ONNX Runtime or OpenVINO is chosen and the
export of this exact folder is cached, none of that is needed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from imgsent.config import CONFIG_NAME, WEIGHTS_NAME, ModelConfig
from imgsent.engines.base import Engine, load_engine, resolve_backend
from imgsent.engines.export import EXPORT_FORMAT, OPSET, _valid_entry, cache_root, cached_onnx
from imgsent.errors import EngineError
from imgsent.hashing import update_from_file


def folder_digest(folder: Path) -> str:
    """SHA-256 over the parsed config, the weights file's bytes and the exporter versions."""
    config = ModelConfig.load(folder)
    h = hashlib.sha256(b"folder|")
    h.update(json.dumps(config.to_dict(), sort_keys=True).encode())
    h.update(f"|format={EXPORT_FORMAT}|opset={OPSET}|torch={torch.__version__}|".encode())
    return update_from_file(h, folder / WEIGHTS_NAME).hexdigest()


def weights_numel(folder: Path) -> int:
    """Number of weights in ``model.safetensors``, read from its header only."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(folder / WEIGHTS_NAME), framework="pt") as fh:
        for key in fh.keys():
            n = 1
            for dim in fh.get_slice(key).get_shape():
                n *= dim
            total += n
    return total


def engine_for_folder(
    folder: Path, *, backend: str, device: torch.device, dtype: torch.dtype
) -> tuple[Engine, ModelConfig, object | None]:
    """The engine for a model folder, its config, and the loaded torch model (``None`` if not needed).

    Raises:
        InvalidConfigError, MissingExtraError, EngineError: As :func:`~imgsent.engines.load_engine`.
        ModelNotFoundError: The folder lacks ``config.json`` or ``model.safetensors``.
    """
    from imgsent.models.sentiment import SentimentModel

    folder = Path(folder)
    chosen = resolve_backend(backend, device, dtype)
    if chosen == "torch" or not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        model = SentimentModel.from_folder(folder)
        return load_engine(model, backend=backend, device=device, dtype=dtype), model.config, model
    key = folder_digest(folder)
    config = ModelConfig.load(folder)
    path = _valid_entry(cache_root() / key)
    model = None
    if path is None:
        model = SentimentModel.from_folder(folder)
        try:
            path = cached_onnx(model, key=key)
        except EngineError:
            if backend != "auto":
                raise
            return load_engine(model, backend=backend, device=device, dtype=dtype), config, model
    if chosen == "onnxruntime":
        from imgsent.engines.ort_engine import OrtEngine

        return OrtEngine(path, config.preprocess), config, model
    from imgsent.engines.openvino_engine import OpenVinoEngine

    return OpenVinoEngine(path, config.preprocess, dtype=dtype), config, model
