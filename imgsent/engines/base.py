"""The engine interface and the choice of engine (``backend="auto"``)."""

from __future__ import annotations

import importlib.util
import logging
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
        """uint8 batch ``[B, 3, S, S]`` -> float32 probabilities ``[B, 3]`` on the CPU."""
        ...

    def set_threads(self, threads: int) -> None:
        """Use ``threads`` compute threads from the next batch on."""
        ...


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve_backend(backend: str, device: torch.device, dtype: torch.dtype) -> str:
    """The engine to use: ``backend`` itself, or for ``"auto"`` the fastest installed exact one.

    ``"auto"`` on the CPU picks OpenVINO, then ONNX Runtime (float32 only), then PyTorch. On 2
    cores, at batch 32, the default model ran 185 img/s with OpenVINO, 113 with ONNX Runtime and
    48 with PyTorch, all in float32 and within 2e-7 of PyTorch's probabilities; OpenVINO is also
    the fastest CPU engine for ``bfloat16``. On CUDA and MPS ``"auto"`` is PyTorch.

    Raises:
        InvalidConfigError: Unknown backend, or a backend that cannot run this device or dtype.
        MissingExtraError: The backend's package is not installed.

    Example:
        >>> resolve_backend("auto", torch.device("cpu"), torch.float32)  # with imgsent[cpu] installed
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


def load_engine(
    model: SentimentModel, *, backend: str, device: torch.device, dtype: torch.dtype, graph: str = "probabilities"
) -> Engine:
    """Build the engine for ``model`` (exporting and caching it for ONNX Runtime and OpenVINO).

    ``graph="features"`` builds an engine whose ``forward`` returns the pooled backbone features
    ``[B, feature_dim]`` instead of probabilities (see :func:`~imgsent.engines.export.export_onnx`).

    With ``backend="auto"``, a model that the exporter cannot handle falls back to PyTorch
    with a logged warning; a backend asked for by name raises instead.

    Raises:
        InvalidConfigError: See :func:`resolve_backend`.
        MissingExtraError: The backend's package is not installed.
        EngineError: The model could not be exported or loaded by the chosen backend.
    """
    chosen = resolve_backend(backend, device, dtype)
    if chosen == "torch":
        from imgsent.engines.torch_engine import TorchEngine

        return TorchEngine(model, device=device, dtype=dtype, graph=graph)
    try:
        from imgsent.engines.export import cached_onnx

        path = cached_onnx(model, graph=graph)
        if chosen == "onnxruntime":
            from imgsent.engines.ort_engine import OrtEngine

            return OrtEngine(path, model.config.preprocess)
        from imgsent.engines.openvino_engine import OpenVinoEngine

        return OpenVinoEngine(path, model.config.preprocess, dtype=dtype)
    except EngineError as exc:
        if backend != "auto":
            raise
        logger.warning("%s; falling back to backend='torch'.", exc)
        from imgsent.engines.torch_engine import TorchEngine

        return TorchEngine(model, device=device, dtype=dtype, graph=graph)
