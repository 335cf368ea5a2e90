"""The embedding function of near-duplicate removal: a model's pooled backbone features, on the engines classify uses.

The features graph is exported and cached like the probabilities graph
(:func:`imgsent.engines.load_engine` with ``graph="features"``), so on the CPU it runs on
OpenVINO or ONNX Runtime, and decoding goes through :mod:`imgsent.data` (or the GPU JPEG path
on CUDA), exactly as ``imgsent classify`` does. Features are computed in float32 on every
engine, so the decisions do not depend on the machine.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import torch

from imgsent.distill.embeddings import EmbedFn

if TYPE_CHECKING:
    from imgsent.models.sentiment import SentimentModel


def engine_embedder(
    model: SentimentModel, *, backend: str = "auto", device: str = "auto", batch_size: int = 64, workers: int | None = None
) -> tuple[EmbedFn, str]:
    """An embed function for :func:`~imgsent.distill.dedup.deduplicate`, and the key of what it computes.

    Args:
        model: The model whose backbone embeds the images.
        backend: ``"auto"``, ``"torch"``, ``"onnxruntime"`` or ``"openvino"`` (as ``imgsent classify``).
        device: ``"auto"`` or a torch device string.
        batch_size: Images per forward pass. Default 64.
        workers: Decoding processes; ``None`` uses the runtime's default for the engine.

    Returns:
        ``(embed, key)``: ``embed`` maps paths to float32 features ``[len(paths), D]`` (an image
        that cannot be decoded gets a fixed pseudo-random direction of its own, so it never matches
        another); ``key`` names the model's weights and the engine.

    Raises:
        InvalidConfigError, MissingExtraError, EngineError: As :func:`imgsent.engines.load_engine`.

    Example:
        >>> embed, key = engine_embedder(model, backend="openvino")  # doctest: +SKIP
        >>> embed(["a.jpg", "b.jpg"]).shape  # doctest: +SKIP
        (2, 1280)
    """
    from imgsent.data import iter_batches
    from imgsent.engines import load_engine
    from imgsent.engines.cache import model_key
    from imgsent.engines.gpu_decode import gpu_decode_supported, iter_gpu_batches
    from imgsent.runtime import capped_threads, compute_threads, default_workers, resolve_device

    chosen = resolve_device(device)
    engine = load_engine(model, backend=backend, device=chosen, dtype=torch.float32, graph="features")
    cfg = model.config.preprocess
    dim = int(model.net.feature_dim)
    workers = default_workers(chosen, engine.name) if workers is None else workers
    threads = compute_threads(chosen, workers, light=True, engine=engine.name)

    def embed(paths: list[str]) -> np.ndarray:
        out = np.empty((len(paths), dim), dtype=np.float32)
        if gpu_decode_supported(cfg, chosen):
            batches = iter_gpu_batches(paths, cfg, batch_size=batch_size, workers=workers, device=chosen)
        else:
            batches = iter_batches(paths, cfg, batch_size=batch_size, workers=workers, pin_memory=chosen.type == "cuda")
        for batch in batches:
            rows, mask = batch.indices.numpy(), batch.mask.numpy()
            if mask.any():
                with capped_threads(threads, engine):
                    out[rows[mask]] = engine.forward(batch.pixels).numpy()
            for row in rows[~mask]:
                out[row] = _own_direction(paths[row], dim)
        return out

    return embed, f"{model_key(model)}|{engine.name}"


def _own_direction(path: str, dim: int) -> np.ndarray:
    """A unit vector fixed by the path: unreadable images match nothing, and reruns store the same rows."""
    seed = int.from_bytes(hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


__all__ = ["engine_embedder"]
