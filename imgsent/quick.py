"""``imgsent.predict``: one call from images to predictions, with the loaded model kept for later calls."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

from imgsent.images import ImageSource
from imgsent.options import PredictOptions, with_predict_options
from imgsent.outputs import Prediction
from imgsent.predictor import Predictor


@functools.lru_cache(maxsize=4)
def _cached_predictor(model: str | None, revision: str | None, device: str, dtype: str, backend: str) -> Predictor:
    return Predictor.from_pretrained(model, revision=revision, device=device, dtype=dtype, backend=backend)  # type: ignore[arg-type]


@with_predict_options
def predict(
    images: ImageSource | Sequence[ImageSource],
    *,
    model: str | os.PathLike[str] | None = None,
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    backend: str = "auto",
    options: PredictOptions | None = None,
    **overrides: Any,
) -> list[Prediction]:
    """Predict image polarity in one call; the loaded model is kept for later calls.

    Up to four predictors (one per model, revision, device, dtype and backend) stay loaded;
    ``imgsent.predict.cache_clear()`` drops them and frees their memory.

    Args:
        images: One image or a list: paths, bytes, PIL images, HWC arrays or CHW tensors.
        model: ``None`` for the default model shipped in the package, a known name, a local
            folder or a Hub repo id.
        revision: Hub branch, tag or commit sha.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``...
        dtype: ``"auto"`` (float32 on CPU), ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        backend: ``"auto"``, ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.
        options: A whole :class:`~imgsent.options.PredictOptions`.
        **overrides: Every option of :meth:`Predictor.predict`, by name (``batch_size``,
            ``workers``, ``binary``, ``tta``, ``max_pixels``, ``min_confidence``).

    Returns:
        One :class:`~imgsent.Prediction` per input, in order; unreadable inputs carry ``error``;
        a video or animated image path gets a :class:`~imgsent.VideoPrediction` (the mean of its frames).

    Raises:
        InvalidConfigError: An unknown option or a bad value (checked before any model is loaded).

    Example:
        >>> import imgsent
        >>> imgsent.predict("examples/images/coffee_cup.jpg", min_confidence=0.5)[0].label
        'positive'
        >>> imgsent.predict.cache_clear()
    """
    opts = PredictOptions.build(options, **overrides)
    key = None if model is None else str(model)
    predictor = _cached_predictor(key, revision, str(device), str(dtype), str(backend))
    return predictor.predict(images, options=opts)


predict.cache_clear = _cached_predictor.cache_clear  # type: ignore[attr-defined]
