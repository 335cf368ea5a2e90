"""Foreign checkpoints in: the authors' Keras ``.h5`` students, converted to imgsent model folders.

The converter (and torch with it) is imported on first use of one of its names, so loading an
already-converted paper model never imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imgsent.convert.keras import PRESETS, KerasPreset, convert_keras

__all__ = ["PRESETS", "KerasPreset", "convert_keras"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from imgsent.convert import keras

        return getattr(keras, name)
    raise AttributeError(f"module 'imgsent.convert' has no attribute {name!r}")
