"""Baselines: a naive per-image loop, and ``transformers.pipeline("image-classification")``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.common import cores


def naive_loop(folder: Path, paths: list[str], *, threads: int | None = None) -> float:
    """Per image: PIL open -> convert -> resize -> one float32 forward pass of the same network; img/s.

    This is what a first script looks like: no batching, no workers, no draft decoding.
    """
    import numpy as np
    import torch
    from PIL import Image

    from imgsent.models.sentiment import SentimentModel
    from imgsent.transforms import normalize

    torch.set_num_threads(threads or cores())
    model = SentimentModel.from_folder(folder).eval()
    cfg = model.config.preprocess
    resample = getattr(Image.Resampling, cfg.interpolation.upper())

    def one(path: str) -> None:
        image = Image.open(path).convert("RGB").resize((cfg.image_size, cfg.image_size), resample)
        pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None]
        with torch.inference_mode():
            torch.softmax(model(normalize(pixels, cfg)), dim=-1)

    one(paths[0])  # warm-up
    start = time.perf_counter()
    for path in paths:
        one(path)
    return len(paths) / (time.perf_counter() - start)


def build_hf_vit(image_size: int = 224, **overrides: Any) -> tuple[Any, Any]:
    """A random-weight ``ViTForImageClassification`` with 3 labels, the same shape as imgsent's ViT, and its processor."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    settings: dict[str, Any] = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                                "intermediate_size": 3072, "patch_size": 16}
    settings.update(overrides)
    config = ViTConfig(
        image_size=image_size,
        num_labels=3,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
        **settings,
    )
    model = ViTForImageClassification(config).eval()
    processor = ViTImageProcessor(
        size={"height": image_size, "width": image_size}, resample=3, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    return model, processor


def hf_pipeline(paths: list[str], *, batch_size: int = 32, image_size: int = 224, threads: int | None = None,
                **overrides: Any) -> float:
    """``transformers.pipeline("image-classification")`` over file paths with ``batch_size``; img/s."""
    import torch
    from transformers import pipeline

    torch.set_num_threads(threads or cores())
    model, processor = build_hf_vit(image_size, **overrides)
    classify = pipeline("image-classification", model=model, image_processor=processor, device="cpu")
    classify(paths[:2], batch_size=2)  # warm-up
    start = time.perf_counter()
    results = classify(paths, batch_size=batch_size, top_k=3)
    elapsed = time.perf_counter() - start
    if len(results) != len(paths):
        raise RuntimeError(f"pipeline returned {len(results)} results for {len(paths)} images")
    return len(paths) / elapsed
