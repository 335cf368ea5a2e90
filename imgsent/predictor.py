"""Load a model once, then predict: preprocess -> forward -> postprocess, in batches."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import torch

from imgsent.data import DecodedBatch, default_workers, iter_batches
from imgsent.engines import Backend, Engine, load_engine
from imgsent.engines.gpu_decode import gpu_decode_supported, iter_gpu_batches
from imgsent.errors import InvalidConfigError
from imgsent.images import DEFAULT_MAX_PIXELS
from imgsent.model import SentimentModel
from imgsent.outputs import Prediction, label_from_probabilities

DeviceLike = str | torch.device
DtypeLike = Literal["auto", "float32", "bfloat16", "float16"] | torch.dtype
_LIGHT_MODEL_PARAMS = 20_000_000  # EfficientNet-Lite0 has 3.4 M parameters, ViT-B/16 86 M
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: DeviceLike = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is passed to :class:`torch.device`.

    Raises:
        InvalidConfigError: The device string is not valid or not available.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise InvalidConfigError(f"Invalid device {device!r}. Use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'.") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidConfigError(f"device={device!r} was requested but CUDA is not available. Use device='auto' or 'cpu'.")
    return resolved


def resolve_dtype(dtype: DtypeLike, device: torch.device) -> torch.dtype:
    """``"auto"`` is bfloat16 (or float16 without bf16 support) autocast on CUDA and float32
    everywhere else, so CPU labels are the same on every x86 and ARM processor."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in _DTYPES:
        raise InvalidConfigError(f"Invalid dtype {dtype!r}. Use one of: auto, {', '.join(_DTYPES)}.")
    return _DTYPES[dtype]


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16; read from /proc/cpuinfo).

    Without it bf16 is emulated and slower than float32; ``dtype="bfloat16"`` on CPU is opt-in.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return bool(set(line.split(":", 1)[1].split()) & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


class Predictor:
    """Predict image polarity with a loaded model.

    Load once with :meth:`from_pretrained`, then call :meth:`predict` on lists of images or
    :meth:`iter_predict` on streams too large for memory. Inputs may be paths, bytes,
    PIL images, HWC numpy arrays or CHW torch tensors, mixed freely.

    Example:
        >>> predictor = Predictor.from_pretrained()          # the default model, offline
        >>> [p.label for p in predictor.predict(["beach.jpg", "storm.jpg"])]
        ['positive', 'negative']
    """

    def __init__(
        self, model: SentimentModel, *, device: DeviceLike = "auto", dtype: DtypeLike = "auto", backend: Backend = "auto"
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.config = model.config
        self.engine = load_engine(model, backend=backend, device=self.device, dtype=self.dtype)
        self.backend = self.engine.name
        self._model: SentimentModel | None = model
        self._folder: Path | None = None
        # Light models spend as long decoding as computing: on CPU they give the workers their own cores.
        self._light = sum(p.numel() for p in model.parameters()) < _LIGHT_MODEL_PARAMS

    @property
    def model(self) -> SentimentModel:
        """The torch model (loaded on first access when a cached ONNX export made it unnecessary)."""
        if self._model is None:
            assert self._folder is not None
            self._model = SentimentModel.from_folder(self._folder)
        return self._model

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] | None = None,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        token: str | bool | None = None,
        local_files_only: bool | None = None,
        device: DeviceLike = "auto",
        dtype: DtypeLike = "auto",
        backend: Backend = "auto",
    ) -> Predictor:
        """Load a model and wrap it for prediction.

        Args:
            model: ``None`` for the default model shipped in the package; a known name; a local
                folder; or a Hub repo id.
            revision: Hub branch, tag or commit sha. Defaults to ``"main"``.
            cache_dir: Hub cache folder.
            token: Hub token for private repos.
            local_files_only: Use only the local cache (also ``HF_HUB_OFFLINE=1``).
            device: ``"auto"`` (cuda, then mps, then cpu), or a torch device string.
            dtype: ``"auto"`` (bf16/fp16 autocast on CUDA, float32 elsewhere), ``"float32"``,
                ``"bfloat16"`` or ``"float16"``.
            backend: ``"auto"`` (the fastest installed engine that is exact for this device and
                dtype: OpenVINO, then ONNX Runtime, then PyTorch on CPU; PyTorch on GPUs),
                ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.

        Returns:
            A ready :class:`Predictor`.

        Raises:
            ModelNotFoundError: The model cannot be found (the message lists known names).
            HubError: The Hub failed or could not be reached.

        Example:
            >>> predictor = Predictor.from_pretrained(device="cpu")   # the bundled model, offline
            >>> predictor.device, predictor.config.architecture.name
            (device(type='cpu'), 'efficientnet_lite0')
        """
        from imgsent.engines.folder import engine_for_folder, weights_numel
        from imgsent.hub import resolve_model_dir

        folder = resolve_model_dir(model, revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only)
        self = cls.__new__(cls)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.engine, self.config, self._model = engine_for_folder(  # type: ignore[assignment]
            Path(folder), backend=backend, device=self.device, dtype=self.dtype
        )
        self.backend, self._folder = self.engine.name, Path(folder)
        self._light = weights_numel(Path(folder)) < _LIGHT_MODEL_PARAMS
        return self

    def predict(
        self,
        images: Any,
        *,
        batch_size: int = 32,
        workers: int | None = None,
        binary: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> list[Prediction]:
        """Predict the polarity of a list of images.

        Args:
            images: One image or a list of images (paths, bytes, PIL images, arrays, tensors).
            batch_size: Images per forward pass. Default 32.
            workers: Decoding processes. ``None`` picks a good number for the device; 0 decodes
                in this process (best for a handful of in-memory images).
            binary: Drop the neutral output and compare negative with positive (the paper's
                evaluation protocol). Probabilities are still all three.
            max_pixels: Inputs with more pixels are refused as decompression bombs.

        Returns:
            One :class:`~imgsent.Prediction` per input, in input order. An input that cannot be
            read gets a prediction with ``error`` set instead of raising.

        Example:
            >>> predictor.predict(["beach.jpg", "missing.jpg"])
            [Prediction(source='beach.jpg', label='positive', negative=0.03, neutral=0.12, positive=0.85, error=None),
             Prediction(source='missing.jpg', label=None, ..., error='missing.jpg: no such file')]
        """
        images = _as_list(images)
        if workers is None and len(images) <= batch_size:
            workers = 0  # starting processes costs more than decoding a handful of images
        return list(self.iter_predict(images, batch_size=batch_size, workers=workers, binary=binary, max_pixels=max_pixels))

    def iter_predict(
        self,
        images: Iterable[Any],
        *,
        batch_size: int = 32,
        workers: int | None = None,
        binary: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> Iterator[Prediction]:
        """Stream predictions for an iterable of any length, in input order, with bounded memory.

        Decoding runs in ``workers`` processes while the model runs the previous batch.
        Arguments are as in :meth:`predict`.

        Yields:
            One :class:`~imgsent.Prediction` per input, in input order.

        Example:
            >>> paths = (str(p) for p in Path("photos").rglob("*.jpg"))
            >>> for prediction in predictor.iter_predict(paths, batch_size=64):
            ...     print(prediction.source, prediction.label)
            photos/a.jpg positive
        """
        for batch in self.iter_batches(images, batch_size=batch_size, workers=workers, max_pixels=max_pixels):
            yield from self.postprocess(batch, self.forward(batch), binary=binary)

    def iter_batches(
        self, images: Iterable[Any], *, batch_size: int = 32, workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> Iterator[DecodedBatch]:
        """Preprocess: decode and resize inputs in batches (see :func:`imgsent.data.iter_batches`)."""
        if batch_size < 1:
            raise InvalidConfigError(f"batch_size must be >= 1, got {batch_size}.")
        if workers is not None and workers < 0:
            raise InvalidConfigError(f"workers must be >= 0, got {workers}.")
        workers = default_workers(self.device) if workers is None else workers
        if gpu_decode_supported(self.config.preprocess, self.device):  # nvJPEG, per-file CPU fallback
            return iter_gpu_batches(
                images, self.config.preprocess, batch_size=batch_size, workers=workers, device=self.device, max_pixels=max_pixels
            )
        batches = iter_batches(
            images,
            self.config.preprocess,
            batch_size=batch_size,
            workers=workers,
            pin_memory=self.device.type == "cuda",
            max_pixels=max_pixels,
        )
        if self.device.type == "cpu" and workers > 0 and self._light:
            return _with_compute_threads(self.engine, batches, max(1, _cores() - workers))
        return batches

    def forward(self, batch: DecodedBatch) -> torch.Tensor:
        """Run the engine on a decoded batch; returns probabilities [n_ok, 3] on CPU in float32."""
        if batch.pixels.shape[0] == 0:
            return torch.empty(0, 3)
        return self.engine.forward(batch.pixels)

    @staticmethod
    def postprocess(batch: DecodedBatch, probs: torch.Tensor, *, binary: bool = False) -> list[Prediction]:
        """Turn probabilities and decode errors into :class:`~imgsent.Prediction` records, in order."""
        rows = iter(probs.tolist())
        out: list[Prediction] = []
        for source, ok, error in zip(batch.sources, batch.ok, batch.errors):
            if not ok:
                out.append(Prediction.failed(source, error or "unknown error"))
                continue
            neg, neu, pos = next(rows)
            label = label_from_probabilities((neg, neu, pos), binary=binary)
            out.append(Prediction(source, label, neg, neu, pos))
        return out


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _with_compute_threads(engine: Engine, batches: Iterator[DecodedBatch], threads: int) -> Iterator[DecodedBatch]:
    """Run the engine on the cores the decoding workers leave free while the batches are consumed.

    Oversubscribing (compute threads on every core plus busy decoding workers) makes OpenMP threads
    wait on each other: on 2 cores it runs the default model 3x slower than one torch thread.
    """
    previous = engine.threads
    engine.set_threads(min(previous or _cores(), threads))
    try:
        yield from batches
    finally:
        engine.set_threads(previous)


def _as_list(images: Any) -> list[Any]:
    """A single image becomes a one-item list; a 4-D array or tensor is split along its first axis."""
    import numpy as np
    from PIL import Image

    if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4:
        return list(images)
    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray, torch.Tensor)):
        return [images]
    return list(images)


@functools.lru_cache(maxsize=4)
def _cached_predictor(model: str | None, revision: str | None, device: str, dtype: str, backend: str) -> Predictor:
    return Predictor.from_pretrained(model, revision=revision, device=device, dtype=dtype, backend=backend)  # type: ignore[arg-type]


def predict(
    images: Any,
    *,
    model: str | os.PathLike[str] | None = None,
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    backend: str = "auto",
    batch_size: int = 32,
    workers: int | None = None,
    binary: bool = False,
) -> list[Prediction]:
    """Predict image polarity in one call; the loaded model is cached for later calls.

    Args:
        images: One image or a list: paths, bytes, PIL images, HWC arrays or CHW tensors.
        model: ``None`` for the default model shipped in the package, a known name, a local
            folder or a Hub repo id.
        revision: Hub branch, tag or commit sha.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``...
        dtype: ``"auto"`` (float32 on CPU), ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        backend: ``"auto"``, ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.
        batch_size: Images per forward pass.
        workers: Decoding processes (``None``: automatic).
        binary: Drop neutral and compare negative with positive (the paper's protocol).

    Returns:
        One :class:`~imgsent.Prediction` per input, in order; unreadable inputs carry ``error``.

    Example:
        >>> import imgsent
        >>> imgsent.predict("examples/images/coffee_cup.jpg")[0].label
        'positive'
    """
    key = None if model is None else str(model)
    predictor = _cached_predictor(key, revision, str(device), str(dtype), str(backend))
    return predictor.predict(images, batch_size=batch_size, workers=workers, binary=binary)
