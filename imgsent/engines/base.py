"""The engine interface and the choice of engine (``backend="auto"``)."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import torch

from imgsent.errors import EngineError, InvalidConfigError, require_extra

if TYPE_CHECKING:
    from imgsent.models.sentiment import SentimentModel

Backend = Literal["auto", "torch", "onnxruntime", "openvino"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnxruntime", "openvino")
_EXTRA = "cpu"  # pip install 'imgsent[cpu]': onnx, onnxruntime, openvino
logger = logging.getLogger(__name__)


class Engine(Protocol):
    """What :class:`~imgsent.Predictor` needs from an engine."""

    name: str
    device: torch.device
    dtype: torch.dtype
    threads: int  # compute threads now in use; 0 means the engine's default (one per core)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """float32 pixels ``[B, 3, S, S]`` in [0, 255] -> float32 calibrated probabilities ``[B, 3]`` on the CPU."""
        ...

    def set_threads(self, threads: int) -> None:
        """Use ``threads`` compute threads from the next batch on."""
        ...


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve_backend(backend: str, device: torch.device, dtype: torch.dtype) -> str:
    """The engine to use: ``backend`` itself, or for ``"auto"`` the fastest installed exact one.

    ``"auto"`` on the CPU picks OpenVINO (a core dependency, and the fastest engine that matches
    PyTorch float32), then ONNX Runtime (float32 only), then PyTorch. OpenVINO also runs
    ``bfloat16``. On CUDA and MPS ``"auto"`` is PyTorch.

    Raises:
        InvalidConfigError: Unknown backend, or a backend that cannot run this device or dtype.
        MissingExtraError: The backend's package is not installed.

    Example:
        >>> resolve_backend("auto", torch.device("cpu"), torch.float32)
        'openvino'
        >>> resolve_backend("auto", torch.device("cuda"), torch.bfloat16)
        'torch'
    """
    if backend not in BACKENDS:
        raise InvalidConfigError(f"Invalid backend {backend!r}. Use one of: {', '.join(BACKENDS)}.")
    if backend == "auto":
        if device.type != "cpu" or dtype not in (torch.float32, torch.bfloat16):
            return "torch"
        if not _installed("onnx"):
            return "torch"
        if _installed("openvino"):
            return "openvino"
        if dtype == torch.float32 and _installed("onnxruntime"):
            return "onnxruntime"
        return "torch"
    if backend != "torch":
        if device.type != "cpu":
            raise InvalidConfigError(
                f"backend={backend!r} runs on the CPU only, but device is {str(device)!r}. "
                "Use backend='torch' or device='cpu'."
            )
        allowed = (torch.float32, torch.bfloat16) if backend == "openvino" else (torch.float32,)
        if dtype not in allowed:
            names = " or ".join(str(d).removeprefix("torch.") for d in allowed)
            raise InvalidConfigError(f"backend={backend!r} runs {names}, not {str(dtype).removeprefix('torch.')}.")
        require_extra(backend, _EXTRA)
        require_extra("onnx", _EXTRA)
    return backend


def describe_engine(name: str, *, device: torch.device, dtype: torch.dtype, requested: str = "auto") -> str:
    """The engine as a run's header names it, with how to get the faster one when ``"auto"`` could not pick it.

    The hint appears when ``backend="auto"`` on the CPU settled for a slower engine because
    OpenVINO or ONNX is not importable. Its ``[cpu]`` is literal text, not markup.

    Example:
        >>> describe_engine("openvino", device=torch.device("cpu"), dtype=torch.float32)
        'openvino'
        >>> describe_engine("torch", device=torch.device("cpu"), dtype=torch.float32, requested="torch")
        'torch'
    """
    cpu_auto = requested == "auto" and device.type == "cpu" and dtype in (torch.float32, torch.bfloat16)
    if name == "openvino" or not cpu_auto:
        return name
    if _installed("openvino") and _installed("onnx"):
        return f"{name} (OpenVINO could not export this model)" if name == "torch" else name
    return f"{name} (OpenVINO, the faster CPU engine, is not installed: pip install 'imgsent[{_EXTRA}]')"


def load_engine(
    source: SentimentModel | str | os.PathLike[str], *, backend: str, device: torch.device, dtype: torch.dtype
) -> Engine:
    """The one engine factory: build the engine for a loaded model or a model folder.

    ONNX Runtime and OpenVINO run the model's export from the engine cache
    (:mod:`imgsent.engines.cache`), made on first use. From a folder whose export is cached the
    torch network is never built. With ``backend="auto"``, a model that the exporter cannot
    handle falls back to PyTorch with a logged warning; a backend asked for by name raises instead.

    Args:
        source: A :class:`~imgsent.models.sentiment.SentimentModel`, or a folder with
            ``config.json`` and ``model.safetensors``.
        backend: ``"auto"``, ``"torch"``, ``"onnxruntime"`` or ``"openvino"`` (see :func:`resolve_backend`).
        device: The resolved torch device.
        dtype: The resolved dtype.

    Returns:
        The engine; a :class:`~imgsent.engines.torch_engine.TorchEngine` keeps its model as ``engine.model``.

    Raises:
        InvalidConfigError: See :func:`resolve_backend`.
        MissingExtraError: The backend's package is not installed.
        ModelNotFoundError: The folder lacks ``config.json`` or ``model.safetensors``.
        EngineError: The model could not be exported or loaded by the chosen backend.
    """
    from imgsent.models.sentiment import SentimentModel

    chosen = resolve_backend(backend, device, dtype)
    model = source if isinstance(source, SentimentModel) else None
    if model is None and (chosen == "torch" or not _is_model_folder(Path(source))):  # type: ignore[arg-type]
        model = SentimentModel.from_folder(source)  # type: ignore[arg-type]  # raises ModelNotFoundError
    if chosen != "torch":
        try:
            return _exported_engine(chosen, source if model is None else model, dtype)
        except EngineError as exc:
            if backend != "auto":
                raise
            logger.warning("%s; falling back to backend='torch'.", exc)
            model = model or SentimentModel.from_folder(source)  # type: ignore[arg-type]
    from imgsent.engines.torch_engine import TorchEngine

    return TorchEngine(model, device=device, dtype=dtype)  # type: ignore[arg-type]


def _is_model_folder(folder: Path) -> bool:
    from imgsent.config import CONFIG_NAME, WEIGHTS_NAME

    return (folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file()


def _exported_engine(chosen: str, source: SentimentModel | str | os.PathLike[str], dtype: torch.dtype) -> Engine:
    """ONNX Runtime or OpenVINO on the cached export; builds the torch network only on a cache miss."""
    from imgsent.config import ModelConfig
    from imgsent.engines.cache import cached_onnx, folder_key, lookup, model_key
    from imgsent.models.sentiment import SentimentModel

    if isinstance(source, SentimentModel):
        config, path = source.config, cached_onnx(source, key=model_key(source))
    else:
        folder = Path(source)
        config, key = ModelConfig.load(folder), folder_key(folder)
        path = lookup(key) or cached_onnx(SentimentModel.from_folder(folder), key=key, source=str(folder))
    if chosen == "onnxruntime":
        from imgsent.engines.ort_engine import OrtEngine

        return OrtEngine(path, config.preprocess)
    from imgsent.engines.openvino_engine import OpenVinoEngine

    return OpenVinoEngine(path, config.preprocess, dtype=dtype)


def weights_numel(source: SentimentModel | str | os.PathLike[str]) -> int:
    """Number of weights of a model, or of a folder's ``model.safetensors`` (read from its header only)."""
    from safetensors import safe_open

    from imgsent.config import WEIGHTS_NAME
    from imgsent.models.sentiment import SentimentModel

    if isinstance(source, SentimentModel):
        return sum(p.numel() for p in source.parameters())
    total = 0
    with safe_open(str(Path(source) / WEIGHTS_NAME), framework="pt") as fh:
        for key in fh.keys():
            n = 1
            for dim in fh.get_slice(key).get_shape():
                n *= dim
            total += n
    return total
