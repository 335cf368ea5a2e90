"""Foreign checkpoints in: the authors' Keras ``.h5`` students, converted to imgsent model folders."""

from imgsent.convert.keras import PRESETS, KerasPreset, convert_keras

__all__ = ["PRESETS", "KerasPreset", "convert_keras"]
