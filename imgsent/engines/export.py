"""ONNX export of a model (what ONNX Runtime and OpenVINO run; cached by :mod:`imgsent.engines.cache`).

The exported graph takes normalised float32 pixels ``[batch, 3, S, S]`` (input ``pixels``,
dynamic batch) and returns calibrated softmax probabilities ``[batch, 3]`` (output
``probabilities``; the graph is traced from :class:`~imgsent.engines.torch_engine.Calibrated`).
Every step that turns an image file into that input has its own ``imgsent.*`` metadata key
(:func:`onnx_metadata`), so the file is a self-describing deployment file: the recipe in
``docs/how-to/engines.md`` rebuilds imgsent's numbers from the keys with Pillow and NumPy alone.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from imgsent.config import PreprocessConfig
from imgsent.engines.torch_engine import Calibrated
from imgsent.errors import EngineError, require_extra
from imgsent.pixels import ALPHA_BACKGROUND
from imgsent.transforms import LETTERBOX_FILL, normalize

if TYPE_CHECKING:
    from imgsent.models.sentiment import SentimentModel

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
OPSET = 17
EXPORT_FORMAT = 2  # bump when the exported graph or its metadata changes, so old cache entries are not reused
METADATA_VERSION = 2  # imgsent.metadata_version: 2 gives every pixel-changing step its own key


def export_onnx(model: SentimentModel, output: str | os.PathLike[str], *, opset: int = OPSET) -> Path:
    """Export ``model`` to an ONNX file with a dynamic batch and its preprocessing in the metadata.

    The weights are exported in float32 whatever the model's current dtype; the model itself
    is not modified.

    Args:
        model: The model to export.
        output: Path of the ``.onnx`` file to write (parent folders are created).
        opset: ONNX opset version. Default 17.

    Returns:
        The path written.

    Raises:
        MissingExtraError: ``onnx`` is not installed (``pip install 'imgsent[cpu]'``).
        EngineError: The exporter failed on this model.

    Example:
        >>> import onnx
        >>> from imgsent.models.sentiment import SentimentModel
        >>> path = export_onnx(SentimentModel.from_pretrained(), "model.onnx")
        >>> {p.key: p.value for p in onnx.load(path).metadata_props}["imgsent.mean"]
        '[0.5, 0.5, 0.5]'
    """
    require_extra("onnx", "cpu")
    import copy

    import onnx

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    net = Calibrated(copy.deepcopy(model).float().eval().to("cpu", memory_format=torch.contiguous_format))
    size = model.config.preprocess.image_size
    example = torch.zeros(2, 3, size, size)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(
                net, (example,), str(output), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=opset, dynamo=False,
            )
    except Exception as exc:  # the exporter raises many untyped errors
        raise EngineError(f"Could not export architecture {model.config.architecture.name!r} to ONNX: {exc}") from None
    proto = onnx.load(str(output))
    proto.doc_string = "imgsent image polarity model: normalised float32 pixels -> probabilities"
    del proto.metadata_props[:]
    for key, value in onnx_metadata(model).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(output))
    return output


def onnx_metadata(model: SentimentModel) -> dict[str, str]:
    """The metadata written into an export: one ``imgsent.*`` key per step that changes the input or output.

    Values are JSON (``true``, ``3.0``, ``null``, ``[224, 224]``) except the plain-text names
    ``imgsent.resize_mode``, ``imgsent.interpolation``, ``imgsent.architecture`` and the
    descriptions ``imgsent.input`` and ``imgsent.output``. See ``docs/how-to/engines.md`` for the
    meaning of every key and a client that follows them.

    Example:
        >>> from imgsent.models.sentiment import SentimentModel
        >>> meta = onnx_metadata(SentimentModel.from_pretrained())
        >>> meta["imgsent.jpeg_draft"], meta["imgsent.jpeg_draft_size"], meta["imgsent.resize_reducing_gap"]
        ('true', '[224, 224]', '3.0')
    """
    cfg = model.config
    pre = cfg.preprocess
    size = pre.image_size
    return {
        "imgsent.metadata_version": str(METADATA_VERSION),
        "imgsent.input": f"{INPUT_NAME}: float32 [batch, 3, {size}, {size}], RGB, (value / 255 - mean) / std",
        "imgsent.output": f"{OUTPUT_NAME}: float32 [batch, 3], softmax(logits / temperature) in the order of "
        "imgsent.labels; the graph already applies the temperature",
        "imgsent.labels": json.dumps(list(cfg.labels)),
        "imgsent.temperature": json.dumps(cfg.temperature),
        # decoding (imgsent.images.decode_image), in the order it happens
        "imgsent.frame": json.dumps("first"),
        "imgsent.jpeg_draft": json.dumps(pre.jpeg_draft),
        "imgsent.jpeg_draft_size": json.dumps([size, size] if pre.jpeg_draft else None),
        "imgsent.exif_orientation": json.dumps("apply"),
        "imgsent.alpha_background": json.dumps(list(ALPHA_BACKGROUND)),
        "imgsent.high_bit_depth": json.dumps("I;16: value / 257, rounded; I and F: see imgsent.images"),
        # resizing (imgsent.transforms.preprocess)
        "imgsent.image_size": str(size),
        "imgsent.resize_mode": pre.resize_mode,
        "imgsent.interpolation": pre.interpolation,
        "imgsent.resize_antialias": json.dumps(pre.resize_antialias),
        "imgsent.resize_reducing_gap": json.dumps(pre.reducing_gap if pre.resize_antialias else None),
        "imgsent.letterbox_fill": json.dumps(list(LETTERBOX_FILL)),
        "imgsent.resize_rounding": json.dumps("uint8" if pre.resize_antialias else "none"),
        # normalisation (imgsent.transforms.normalize)
        "imgsent.mean": json.dumps(list(pre.mean)),
        "imgsent.std": json.dumps(list(pre.std)),
        "imgsent.architecture": cfg.architecture.name,
        "imgsent.config": json.dumps(cfg.to_dict(), sort_keys=True),
    }


def normalize_numpy(pixels: torch.Tensor, cfg: PreprocessConfig) -> np.ndarray:
    """Pixels ``[B, 3, S, S]`` in [0, 255] -> contiguous float32 numpy, normalised as in the torch engine."""
    return np.ascontiguousarray(normalize(pixels.contiguous(), cfg).numpy())
