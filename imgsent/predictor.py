"""Load a model once, then predict: preprocess -> forward -> postprocess, in batches."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from imgsent.data import DecodedBatch
from imgsent.config import ModelConfig
from imgsent.engines import Backend, describe_engine, load_engine
from imgsent.engines.base import weights_numel
from imgsent.engines.gpu_decode import iter_device_batches
from imgsent.explain import Explanation, check_target, explain_batch, float_network
from imgsent.images import DEFAULT_MAX_PIXELS, ImageSource
from imgsent.models.sentiment import SentimentModel
from imgsent.options import PredictOptions, with_predict_options
from imgsent.outputs import Prediction, labelled
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
    """Predict image polarity with a loaded model: load once, then preprocess -> forward -> postprocess in batches.

    Build one with :meth:`from_pretrained` (a known name, a Hub repo id or a folder), or from a
    loaded :class:`~imgsent.models.sentiment.SentimentModel` or a model folder. Then call
    :meth:`predict` on lists of images or :meth:`iter_predict` on streams too large for memory.
    Inputs may be paths, bytes, PIL images, HWC numpy arrays or CHW torch tensors, mixed freely.
    Every predict method takes the options of :class:`~imgsent.options.PredictOptions` as keywords.

    Args:
        model: A loaded :class:`~imgsent.models.sentiment.SentimentModel`, or a folder with
            ``config.json`` and ``model.safetensors`` (an engine whose export is cached then
            never builds the torch network).
        device: ``"auto"`` (cuda, then mps, then cpu), or a torch device string.
        dtype: ``"auto"`` (bf16/fp16 autocast on CUDA, float32 elsewhere), ``"float32"``,
            ``"bfloat16"`` or ``"float16"``.
        backend: ``"auto"`` (the fastest engine that is exact for this device and dtype:
            OpenVINO, then ONNX Runtime, then PyTorch on CPU; PyTorch on GPUs), ``"torch"``,
            ``"onnxruntime"`` or ``"openvino"``.
        name: Where the model came from, for ``repr`` and run records. Default: ``"custom"``
            for a loaded model, the folder path for a folder.
        revision: The Hub commit the weights came from; ``None`` for bundled and local models.

    Raises:
        InvalidConfigError: Bad device, dtype or backend (the message lists the valid ones).
        MissingExtraError: The backend's package is not installed.
        ModelNotFoundError: The folder lacks ``config.json`` or ``model.safetensors``.

    Example:
        >>> predictor = Predictor.from_pretrained(device="cpu", backend="torch")  # the bundled model, offline
        >>> predictor
        Predictor(model='default', device='cpu', dtype='float32', engine='torch')
        >>> [p.label for p in predictor.predict(["examples/images/coffee_cup.jpg", "missing.jpg"])]
        ['positive', None]
    """

    def __init__(
        self,
        model: SentimentModel | str | os.PathLike[str],
        *,
        device: DeviceLike = "auto",
        dtype: DtypeLike = "auto",
        backend: Backend = "auto",
        name: str | None = None,
        revision: str | None = None,
    ) -> None:
        """Build the engine for ``model`` on ``device`` (see the class docstring for the arguments)."""
        loaded = model if isinstance(model, SentimentModel) else None
        self.name = name or ("custom" if loaded is not None else str(model))
        """Where the model came from: ``"default"``, a known name, a Hub repo id or a folder path."""
        self.revision = revision
        """The Hub commit the weights were loaded from; ``None`` for bundled and local models."""
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.requested_backend = backend
        """The ``backend`` asked for (``"auto"`` by default); :attr:`backend` is the engine it resolved to."""
        self.engine = load_engine(model, backend=backend, device=self.device, dtype=self.dtype)
        self.backend = self.engine.name
        self._model: SentimentModel | None = loaded or getattr(self.engine, "model", None)
        self._folder: Path | None = None if loaded is not None else Path(model)
        self.config = self._model.config if self._model is not None else ModelConfig.load(self._folder)  # type: ignore[arg-type]
        # Light models spend as long decoding as computing: on CPU they give the workers their own cores.
        self._light = weights_numel(self._model if self._model is not None else self._folder) < _LIGHT_MODEL_PARAMS  # type: ignore[arg-type]

    @property
    def model(self) -> SentimentModel:
        """The torch model (loaded on first access when a cached ONNX export made it unnecessary)."""
        if self._model is None:
            self._model = SentimentModel.from_folder(self._folder)  # type: ignore[arg-type]
        return self._model

    @property
    def engine_description(self) -> str:
        """The engine for a run's header, with how to install a faster one when ``"auto"`` had to settle."""
        return describe_engine(self.backend, device=self.device, dtype=self.dtype, requested=self.requested_backend)

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
        """Find a model, then build a :class:`Predictor` on its folder.

        Args:
            model: ``None`` for the default model shipped in the package; a known name; a local
                folder; or a Hub repo id.
            revision: Hub branch, tag or commit sha. Defaults to ``"main"``.
            cache_dir: Hub cache folder.
            token: Hub token for private repos.
            local_files_only: Use only the local cache (also ``HF_HUB_OFFLINE=1``).
            device: As in :class:`Predictor`.
            dtype: As in :class:`Predictor`.
            backend: As in :class:`Predictor`.

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
        from imgsent.convert.paper import CONVERTER
        from imgsent.hub import resolve_model_dir
        from imgsent.hub.names import model_display_name, snapshot_commit

        folder = Path(resolve_model_dir(
            model, revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only,
            convert=CONVERTER,
        ))
        return cls(folder, device=device, dtype=dtype, backend=backend, name=model_display_name(model),
                   revision=snapshot_commit(folder, revision))

    def __repr__(self) -> str:
        """``Predictor(model='default', device='cpu', dtype='float32', engine='torch')``, plus the revision when known."""
        revision = f", revision={self.revision!r}" if self.revision else ""
        dtype = str(self.dtype).removeprefix("torch.")
        return f"Predictor(model={self.name!r}{revision}, device={str(self.device)!r}, dtype={dtype!r}, engine={self.backend!r})"

    @with_predict_options
    def predict(
        self, images: ImageSource | Sequence[ImageSource], *, options: PredictOptions | None = None, **overrides: Any
    ) -> list[Prediction]:
        """Predict the polarity of a list of images.

        Args:
            images: One image or a list of images (paths, bytes, PIL images, arrays, tensors).
            options: A whole :class:`~imgsent.options.PredictOptions`. Default: its defaults.
            **overrides: Any :class:`~imgsent.options.PredictOptions` field, by name:
                ``batch_size`` (32), ``workers`` (``None``: automatic; with no more images than
                ``batch_size``, 0), ``binary`` (False), ``tta`` (False), ``max_pixels`` and
                ``min_confidence`` (0.0).

        Returns:
            One :class:`~imgsent.Prediction` per input, in input order. An input that cannot be
            read gets a prediction with ``error`` set instead of raising. A video or animation
            gets a :class:`~imgsent.VideoPrediction`, the mean of 8 frames (:meth:`predict_video`).

        Raises:
            InvalidConfigError: An unknown option or a bad value (checked before any work).

        Example:
            >>> predictor = Predictor.from_pretrained(device="cpu", dtype="float32")
            >>> predictor.predict(["examples/images/coffee_cup.jpg", "missing.jpg"])
            [Prediction(source='examples/images/coffee_cup.jpg', label='positive', negative=0.1149..., neutral=..., positive=0.8850..., error=None, confidence=0.8850...),
             Prediction(source='missing.jpg', label=None, negative=None, neutral=None, positive=None, error="Cannot open image 'missing.jpg': no such file.", confidence=None)]
        """
        opts = PredictOptions.build(options, **overrides)
        images = _as_list(images)
        if opts.workers is None and len(images) <= opts.batch_size:
            opts = dataclasses.replace(opts, workers=0)  # starting processes costs more than decoding a handful of images
        return list(self.iter_predict(images, options=opts))

    @with_predict_options
    def iter_predict(
        self, images: Iterable[ImageSource], *, options: PredictOptions | None = None, **overrides: Any
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
        # checked now; a video or animation path gets its VideoPrediction in its place
        return iter_in_order(self, images, PredictOptions.build(options, **overrides))

    @with_predict_options
    def iter_predict_batches(
        self, images: Iterable[ImageSource], *, options: PredictOptions | None = None, **overrides: Any
    ) -> Iterator[list[Prediction]]:
        """The whole pipeline, batch by batch: decode -> forward -> postprocess.

        Callers that write or count results per batch (``classify``, ``evaluate``) use this;
        arguments are as in :meth:`predict`, and are checked when it is called.

        Yields:
            One list of up to ``batch_size`` :class:`~imgsent.Prediction` records per batch, in input order.
        """
        opts = PredictOptions.build(options, **overrides)  # checked now, before the first batch is asked for
        return (predictions for _, predictions in self._predicted_batches(images, opts))

    def _predicted_batches(
        self, images: Iterable[ImageSource], opts: PredictOptions
    ) -> Iterator[tuple[DecodedBatch, list[Prediction]]]:
        """The one pipeline: decode -> forward -> postprocess, yielding each batch with its predictions."""
        workers = self._workers(opts.workers)
        threads = compute_threads(self.device, workers, light=self._light, engine=self.backend)
        for batch in self.iter_batches(images, batch_size=opts.batch_size, workers=workers, max_pixels=opts.max_pixels):
            with capped_threads(threads, self.engine):  # scoped to the compute; the previous count is restored
                probs = self.forward(batch)
                if opts.tta and probs.shape[0]:
                    probs = (probs + self.forward(dataclasses.replace(batch, pixels=batch.pixels.flip(-1)))) / 2
            yield batch, self.postprocess(batch, probs, binary=opts.binary, min_confidence=opts.min_confidence)

    @with_predict_options
    def explain(
        self, images: ImageSource | Sequence[ImageSource], *, target: str | None = None,
        options: PredictOptions | None = None, **overrides: Any,
    ) -> list[Explanation]:
        """Predict and show where the model looked: one Grad-CAM map per image (``pip install 'imgsent[explain]'``).

        Args:
            images: One image or a list (paths, bytes, PIL images, arrays, tensors).
            target: ``"negative"``, ``"neutral"``, ``"positive"``, or ``None`` (default) for each
                image's most probable label.
            options: A whole :class:`~imgsent.options.PredictOptions`, as in :meth:`predict`.
            **overrides: Any :class:`~imgsent.options.PredictOptions` field, by name, as in :meth:`predict`.

        Returns:
            One :class:`~imgsent.explain.Explanation` per input, in order: ``.prediction`` is the
            :class:`~imgsent.Prediction` that :meth:`predict` gives for that input (same decoding,
            engine and probabilities) and ``.heatmap`` a float32 array ``[height, width]`` in
            [0, 1] at the image's displayed size (``None`` for an input that cannot be read).

        Raises:
            ExplainError: ``target`` is not a label, or the architecture has no explanation method.
            MissingExtraError: ``grad-cam`` is not installed.

        Example:
            >>> (item,) = predictor.explain("examples/images/coffee_cup.jpg")  # doctest: +SKIP
            >>> item.prediction.label, item.heatmap.shape  # doctest: +SKIP
            ('positive', (427, 640))
        """
        opts = PredictOptions.build(options, **overrides)
        images = _as_list(images)
        if opts.workers is None and len(images) <= opts.batch_size:
            opts = dataclasses.replace(opts, workers=0)  # starting processes costs more than decoding a handful of images
        return list(self.iter_explain(images, target=target, options=opts))

    @with_predict_options
    def iter_explain(
        self, images: Iterable[ImageSource], *, target: str | None = None,
        options: PredictOptions | None = None, **overrides: Any,
    ) -> Iterator[Explanation]:
        """Stream :meth:`explain`: the batches and predictions of :meth:`iter_predict_batches`, then
        Grad-CAM once on each batch's pixels."""
        check_target(target)
        opts = PredictOptions.build(options, **overrides)
        network = None
        for batch, predictions in self._predicted_batches(images, opts):
            network = network or float_network(self.model.net)
            yield from explain_batch(network, self.config, batch, predictions, target=target)

    def iter_batches(
        self, images: Iterable[ImageSource], *, batch_size: int = 32, workers: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> Iterator[DecodedBatch]:
        """Preprocess: decode and resize inputs in batches (see :func:`imgsent.engines.gpu_decode.iter_device_batches`)."""
        PredictOptions(batch_size=batch_size, workers=workers, max_pixels=max_pixels)  # the one validation
        cfg, workers = self.config.preprocess, self._workers(workers)
        return iter_device_batches(images, cfg, batch_size=batch_size, workers=workers, device=self.device,
                                   max_pixels=max_pixels)

    def _workers(self, workers: int | None) -> int:
        """The decoding workers to use: the caller's choice (checked by :class:`PredictOptions`) or the runtime default."""
        return default_workers(self.device, self.backend) if workers is None else workers

    def forward(self, batch: DecodedBatch) -> torch.Tensor:
        """Run the engine on a decoded batch; returns calibrated probabilities [n_ok, 3] on CPU in float32.

        Every engine ends in :class:`~imgsent.engines.torch_engine.Calibrated` (PyTorch runs it,
        the ONNX export is traced from it), the one place ``config.temperature`` is applied.
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
        return [labelled(source, tuple(next(rows)), binary=binary, min_confidence=min_confidence) if ok  # type: ignore[arg-type]
                else Prediction.failed(source, error or "unknown error")
                for source, ok, error in zip(batch.sources, batch.ok, batch.errors)]


def _as_list(images: ImageSource | Iterable[ImageSource]) -> list[ImageSource]:
    """A single image becomes a one-item list; a 4-D array or tensor is split along its first axis."""
    import numpy as np
    from PIL import Image

    if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4:
        return list(images)
    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray, torch.Tensor)):
        return [images]
    return list(images)
