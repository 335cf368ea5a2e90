"""The embedding function of near-duplicate removal: a model's pooled backbone features, on the engines classify uses.

The features graph is exported and cached like the probabilities graph
(:func:`imgsent.engines.load_engine` with ``graph="features"``), so on the CPU it runs on
OpenVINO or ONNX Runtime, and decoding goes through the same batches as prediction
(:func:`imgsent.engines.gpu_decode.iter_device_batches`: the CPU loader, or nvJPEG on CUDA),
exactly as ``imgsent classify`` does. From a model folder whose export is cached, the torch
network is never built. Features are computed in float32 on every engine, so the decisions do
not depend on the machine.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from imgsent.config import PreprocessConfig
    from imgsent.engines.base import Engine
    from imgsent.models.sentiment import SentimentModel


class FeatureEmbedder:
    """Paths -> float32 features, one batch at a time, through one decoding stream.

    Call it with a list of paths (the ``embed`` of :func:`~imgsent.distill.dedup.deduplicate`),
    or use :meth:`stream` to embed any number of paths through a single loader, so its decoding
    workers start once. An image that cannot be decoded gets a fixed pseudo-random direction of
    its own, so it never matches another.

    Attributes:
        engine: The features engine.
        key: What the features depend on: the model's weights and config, and the engine.
    """

    def __init__(
        self, engine: Engine, cfg: PreprocessConfig, key: str, *, device: torch.device, batch_size: int, workers: int
    ) -> None:
        from imgsent.runtime import compute_threads

        self.engine, self.key, self._cfg, self._device = engine, key, cfg, device
        self._batch_size, self._workers = batch_size, workers
        self._threads = compute_threads(device, workers, light=True, engine=engine.name)

    def __call__(self, paths: list[str]) -> np.ndarray:
        """Features of ``paths``, float32 ``[len(paths), D]``."""
        parts = list(self.stream(paths))
        return np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32)

    def stream(self, paths: Iterable[str]) -> Iterator[np.ndarray]:
        """Features of ``paths`` in order, as float32 blocks of up to ``batch_size`` rows."""
        from imgsent.engines.gpu_decode import iter_device_batches
        from imgsent.runtime import capped_threads

        batches = iter_device_batches(paths, self._cfg, batch_size=self._batch_size, workers=self._workers,
                                      device=self._device)
        for batch in batches:
            mask = batch.mask.numpy()
            features = None
            if mask.any():
                with capped_threads(self._threads, self.engine):
                    features = self.engine.forward(batch.pixels).numpy()
            dim = features.shape[1] if features is not None else self._dim()
            out = np.empty((len(mask), dim), dtype=np.float32)
            if features is not None:
                out[mask] = features
            for row in np.flatnonzero(~mask):
                out[row] = _own_direction(batch.sources[row], dim)
            yield out

    def _dim(self) -> int:
        """The feature width, from one forward pass of a blank image (for a batch with no readable image)."""
        if not hasattr(self, "_width"):
            size = self._cfg.image_size
            self._width = int(self.engine.forward(torch.zeros(1, 3, size, size)).shape[1])
        return self._width


def engine_embedder(
    source: SentimentModel | str | os.PathLike[str], *, backend: str = "auto", device: str = "auto",
    batch_size: int = 64, workers: int | None = None,
) -> tuple[FeatureEmbedder, str]:
    """An embed function for :func:`~imgsent.distill.dedup.deduplicate`, and the key of what it computes.

    Args:
        source: The model whose backbone embeds the images, or a model folder (``config.json``
            and ``model.safetensors``); from a folder whose export is cached, no torch network is built.
        backend: ``"auto"``, ``"torch"``, ``"onnxruntime"`` or ``"openvino"`` (as ``imgsent classify``).
        device: ``"auto"`` or a torch device string.
        batch_size: Images per forward pass. Default 64.
        workers: Decoding processes; ``None`` uses the runtime's default for the engine.

    Returns:
        ``(embed, key)``: ``embed`` (a :class:`FeatureEmbedder`) maps paths to float32 features
        ``[len(paths), D]``; ``key`` names the model's weights and the engine.

    Raises:
        InvalidConfigError, MissingExtraError, EngineError, ModelNotFoundError: As :func:`imgsent.engines.load_engine`.

    Example:
        >>> embed, key = engine_embedder(model, backend="openvino")  # doctest: +SKIP
        >>> embed(["a.jpg", "b.jpg"]).shape  # doctest: +SKIP
        (2, 1280)
    """
    from imgsent.config import ModelConfig
    from imgsent.engines import load_engine
    from imgsent.engines.cache import folder_key, model_key
    from imgsent.models.sentiment import SentimentModel
    from imgsent.runtime import default_workers, resolve_device

    chosen = resolve_device(device)
    engine = load_engine(source, backend=backend, device=chosen, dtype=torch.float32, graph="features")
    if isinstance(source, SentimentModel):
        config, weights = source.config, model_key(source)
    else:
        config, weights = ModelConfig.load(source), folder_key(source)
    workers = default_workers(chosen, engine.name) if workers is None else workers
    key = f"{weights}|{engine.name}"
    return FeatureEmbedder(engine, config.preprocess, key, device=chosen, batch_size=batch_size, workers=workers), key


def _own_direction(path: str, dim: int) -> np.ndarray:
    """A unit vector fixed by the path: unreadable images match nothing, and reruns store the same rows."""
    seed = int.from_bytes(hashlib.blake2b(str(path).encode("utf-8", "surrogateescape"), digest_size=8).digest(), "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


__all__ = ["FeatureEmbedder", "engine_embedder"]
