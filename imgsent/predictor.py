"""Load a model once, then predict: preprocess -> forward -> postprocess, in batches."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from imgsent.data import DecodedBatch, iter_batches
from imgsent.engines import Backend, load_engine
from imgsent.engines.gpu_decode import gpu_decode_supported, iter_gpu_batches
from imgsent.errors import InvalidConfigError
from imgsent.images import DEFAULT_MAX_PIXELS, ImageSource
from imgsent.models.sentiment import SentimentModel
from imgsent.outputs import Prediction, check_min_confidence, labelled
from imgsent.runtime import (
    DeviceLike,
    DtypeLike,
    capped_threads,
    compute_threads,
    default_workers,
    resolve_device,
    resolve_dtype,
)
from imgsent.video_predict import VideoMethods, iter_in_order

_LIGHT_MODEL_PARAMS = 20_000_000  # EfficientNet-Lite0 has 3.4 M parameters, ViT-B/16 86 M


class Predictor(VideoMethods):
    """Predict image polarity with a loaded model.

    Load once with :meth:`from_pretrained`, then call :meth:`predict` on lists of images or
    :meth:`iter_predict` on streams too large for memory. Inputs may be paths, bytes,
    PIL images, HWC numpy arrays or CHW torch tensors, mixed freely.

    Example:
        >>> predictor = Predictor.from_pretrained(device="cpu", backend="torch")  # the bundled model, offline
        >>> predictor
        Predictor(model='default', device='cpu', dtype='float32', engine='torch')
        >>> [p.label for p in predictor.predict(["examples/images/coffee_cup.jpg", "missing.jpg"])]
        ['positive', None]
    """

    def __init__(
        self,
        model: SentimentModel,
        *,
        device: DeviceLike = "auto",
        dtype: DtypeLike = "auto",
        backend: Backend = "auto",
        name: str = "custom",
        revision: str | None = None,
    ) -> None:
        self.name = name
        """Where the model came from: ``"default"``, a known name, a Hub repo id or a folder path."""
        self.revision = revision
        """The Hub commit the weights were loaded from; ``None`` for bundled and local models."""
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
        from imgsent.hub.names import model_display_name, snapshot_commit

        folder = Path(resolve_model_dir(
            model, revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only
        ))
        self = cls.__new__(cls)
        self.name, self.revision = model_display_name(model), snapshot_commit(folder, revision)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.engine, self.config, self._model = engine_for_folder(  # type: ignore[assignment]
            folder, backend=backend, device=self.device, dtype=self.dtype
        )
        self.backend, self._folder = self.engine.name, folder
        self._light = weights_numel(folder) < _LIGHT_MODEL_PARAMS
        return self

    def __repr__(self) -> str:
        """``Predictor(model='default', device='cpu', dtype='float32', engine='torch')``, plus the revision when known."""
        revision = f", revision={self.revision!r}" if self.revision else ""
        dtype = str(self.dtype).removeprefix("torch.")
        return f"Predictor(model={self.name!r}{revision}, device={str(self.device)!r}, dtype={dtype!r}, engine={self.backend!r})"

    def predict(
        self,
        images: ImageSource | Sequence[ImageSource],
        *,
        batch_size: int = 32,
        workers: int | None = None,
        binary: bool = False,
        tta: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        min_confidence: float = 0.0,
    ) -> list[Prediction]:
        """Predict the polarity of a list of images.

        Args:
            images: One image or a list of images (paths, bytes, PIL images, arrays, tensors).
            batch_size: Images per forward pass. Default 32.
            workers: Decoding processes. ``None`` picks a good number for the device; 0 decodes
                in this process (best for a handful of in-memory images).
            binary: Drop the neutral output and compare negative with positive (the paper's
                evaluation protocol). Probabilities are still all three.
            tta: Average the probabilities of each image and its horizontal mirror. Default False.
            max_pixels: Inputs with more pixels are refused as decompression bombs.
            min_confidence: Predictions whose calibrated confidence is below it get the label
                ``"uncertain"`` (probabilities and confidence kept). Default 0: never.

        Returns:
            One :class:`~imgsent.Prediction` per input, in input order. An input that cannot be
            read gets a prediction with ``error`` set instead of raising. A video or animation
            gets a :class:`~imgsent.VideoPrediction`, the mean of 8 frames (:meth:`predict_video`).

        Example:
            >>> predictor = Predictor.from_pretrained(device="cpu", dtype="float32")
            >>> predictor.predict(["examples/images/coffee_cup.jpg", "missing.jpg"])
            [Prediction(source='examples/images/coffee_cup.jpg', label='positive', negative=0.1149..., neutral=..., positive=0.8850..., error=None, confidence=0.8850...),
             Prediction(source='missing.jpg', label=None, negative=None, neutral=None, positive=None, error="Cannot open image 'missing.jpg': no such file.", confidence=None)]
        """
        images = _as_list(images)
        if workers is None and len(images) <= batch_size:
            workers = 0  # starting processes costs more than decoding a handful of images
        return list(
            self.iter_predict(images, batch_size=batch_size, workers=workers, binary=binary, tta=tta, max_pixels=max_pixels,
                              min_confidence=min_confidence)
        )

    def iter_predict(
        self,
        images: Iterable[ImageSource],
        *,
        batch_size: int = 32,
        workers: int | None = None,
        binary: bool = False,
        tta: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        min_confidence: float = 0.0,
    ) -> Iterator[Prediction]:
        """Stream predictions for an iterable of any length, in input order, with bounded memory.

        Decoding runs in ``workers`` processes while the model runs the previous batch.
        Arguments are as in :meth:`predict`.

        Yields:
            One :class:`~imgsent.Prediction` per input, in input order (for a video or animation
            path, a :class:`~imgsent.VideoPrediction`, as in :meth:`predict`).

        Example:
            >>> from pathlib import Path
            >>> predictor = Predictor.from_pretrained()
            >>> paths = (str(p) for p in sorted(Path("examples/images").glob("*.jpg")))
            >>> for prediction in predictor.iter_predict(paths, batch_size=64):
            ...     print(prediction.source, prediction.label)
            examples/images/astronaut_eileen_collins.jpg positive
            examples/images/chelsea_the_cat.jpg positive
            examples/images/coffee_cup.jpg positive
            examples/images/falcon9_dscovr_launch.jpg positive
            examples/images/hubble_extreme_deep_field.jpg positive
            examples/images/photographer_grayscale.jpg positive
        """
        yield from iter_in_order(self, images, batch_size=batch_size, workers=workers, binary=binary, tta=tta,
                                 max_pixels=max_pixels, min_confidence=min_confidence)  # videos: VideoPrediction

    def iter_predict_batches(
        self,
        images: Iterable[ImageSource],
        *,
        batch_size: int = 32,
        workers: int | None = None,
        binary: bool = False,
        tta: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        min_confidence: float = 0.0,
    ) -> Iterator[list[Prediction]]:
        """The whole pipeline, batch by batch: decode -> forward -> postprocess.

        Callers that write or count results per batch (``classify``, ``evaluate``) use this;
        arguments are as in :meth:`predict`.

        Yields:
            One list of up to ``batch_size`` :class:`~imgsent.Prediction` records per batch, in input order.
        """
        check_min_confidence(min_confidence)
        workers = self._workers(workers)
        threads = compute_threads(self.device, workers, light=self._light, engine=self.backend)
        for batch in self.iter_batches(images, batch_size=batch_size, workers=workers, max_pixels=max_pixels):
            with capped_threads(threads, self.engine):  # scoped to the compute; the previous count is restored
                probs = self.forward(batch)
                if tta and probs.shape[0]:
                    probs = (probs + self.forward(dataclasses.replace(batch, pixels=batch.pixels.flip(-1)))) / 2
            yield self.postprocess(batch, probs, binary=binary, min_confidence=min_confidence)

    def explain(self, images: ImageSource | Sequence[ImageSource], *, target: str | None = None) -> list[np.ndarray]:
        """Where the model looked: one saliency map per image (Grad-CAM; ``pip install 'imgsent[explain]'``).

        Args:
            images: One image or a list (paths, bytes, PIL images, arrays, tensors).
            target: ``"negative"``, ``"neutral"`` or ``"positive"``; ``None`` (default) explains
                each image's predicted label.

        Returns:
            One float32 array [height, width] in [0, 1] per image, at the image's own size.

        Raises:
            ImageDecodeError: An input cannot be decoded.
            ExplainError: ``target`` is not a label, or the architecture has no explanation method.
            MissingExtraError: ``grad-cam`` is not installed.

        Example:
            >>> [m.shape for m in predictor.explain("examples/images/coffee_cup.jpg")]  # doctest: +SKIP
            [(427, 640)]
        """
        from imgsent.explain import explain_maps

        return explain_maps(self, _as_list(images), target=target)

    def iter_batches(
        self,
        images: Iterable[ImageSource],
        *,
        batch_size: int = 32,
        workers: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> Iterator[DecodedBatch]:
        """Preprocess: decode and resize inputs in batches (see :func:`imgsent.data.iter_batches`)."""
        if batch_size < 1:
            raise InvalidConfigError(f"batch_size must be >= 1, got {batch_size}.")
        if gpu_decode_supported(self.config.preprocess, self.device):  # nvJPEG, per-file CPU fallback
            return iter_gpu_batches(
                images, self.config.preprocess, batch_size=batch_size, workers=self._workers(workers),
                device=self.device, max_pixels=max_pixels,
            )
        return iter_batches(
            images,
            self.config.preprocess,
            batch_size=batch_size,
            workers=self._workers(workers),
            pin_memory=self.device.type == "cuda",
            max_pixels=max_pixels,
        )

    def _workers(self, workers: int | None) -> int:
        """The decoding workers to use: the caller's choice, checked, or the runtime default."""
        if workers is None:
            return default_workers(self.device, self.backend)
        if workers < 0:
            raise InvalidConfigError(f"workers must be >= 0, got {workers}.")
        return workers

    def forward(self, batch: DecodedBatch) -> torch.Tensor:
        """Run the engine on a decoded batch; returns calibrated probabilities [n_ok, 3] on CPU in float32.

        The engines divide the logits by the model's ``config.temperature`` before the softmax.
        """
        if batch.pixels.shape[0] == 0:
            return torch.empty(0, 3)
        return self.engine.forward(batch.pixels)

    @staticmethod
    def postprocess(
        batch: DecodedBatch, probs: torch.Tensor, *, binary: bool = False, min_confidence: float = 0.0
    ) -> list[Prediction]:
        """Turn probabilities and decode errors into :class:`~imgsent.Prediction` records, in order."""
        rows = iter(probs.tolist())
        out: list[Prediction] = []
        for source, ok, error in zip(batch.sources, batch.ok, batch.errors):
            if not ok:
                out.append(Prediction.failed(source, error or "unknown error"))
                continue
            neg, neu, pos = next(rows)
            out.append(labelled(source, (neg, neu, pos), binary=binary, min_confidence=min_confidence))
        return out


def _as_list(images: ImageSource | Iterable[ImageSource]) -> list[ImageSource]:
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
    images: ImageSource | Sequence[ImageSource],
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
