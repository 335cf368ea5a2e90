"""imgsent: image sentiment polarity (negative / neutral / positive) from pixels alone.

Example:
    >>> import imgsent
    >>> imgsent.predict("examples/images/coffee_cup.jpg")
    [Prediction(source='examples/images/coffee_cup.jpg', label='positive', ...)]
    >>> imgsent.predict.cache_clear()  # free the model that predict keeps loaded
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "FramePrediction",
    "ModelConfig",
    "PredictOptions",
    "Prediction",
    "Predictor",
    "SentimentModel",
    "VideoPrediction",
    "__version__",
    "predict",
    "to_dataframe",
]

if TYPE_CHECKING:
    from imgsent.config import ModelConfig
    from imgsent.options import PredictOptions
    from imgsent.models.sentiment import SentimentModel
    from imgsent.outputs import Prediction
    from imgsent.outputs import to_dataframe
    from imgsent.predictor import Predictor
    from imgsent.quick import predict
    from imgsent.video_outputs import FramePrediction, VideoPrediction

_LAZY = {
    "ModelConfig": "imgsent.config",
    "PredictOptions": "imgsent.options",
    "Prediction": "imgsent.outputs",
    "Predictor": "imgsent.predictor",
    "SentimentModel": "imgsent.models.sentiment",
    "predict": "imgsent.quick",
    "to_dataframe": "imgsent.outputs",
    "FramePrediction": "imgsent.video_outputs",
    "VideoPrediction": "imgsent.video_outputs",
}


def __getattr__(name: str) -> Any:
    """Import public names on first use, so ``import imgsent`` stays fast."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'imgsent' has no attribute {name!r}")
