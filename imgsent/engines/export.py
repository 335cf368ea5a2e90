"""ONNX export of a model (what ONNX Runtime and OpenVINO run; cached by :mod:`imgsent.engines.cache`).

The exported graph takes normalised float32 pixels ``[batch, 3, S, S]`` (input ``pixels``,
dynamic batch) and returns softmax probabilities ``[batch, 3]`` (output ``probabilities``).
The preprocessing that turns an image into that input (size, resize mode, filter, mean, std)
and the labels are written into the file's metadata, so the file is usable outside Python.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from imgsent.config import PreprocessConfig
from imgsent.errors import EngineError, require_extra

if TYPE_CHECKING:
    from imgsent.models.sentiment import SentimentModel

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
OPSET = 17
EXPORT_FORMAT = 1  # bump when the exported graph changes, so old cache entries are not reused


class _Probabilities(nn.Module):
    """The network, its calibration temperature and a softmax: what the exported graph computes."""

    def __init__(self, model: SentimentModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(pixels).float() / self.model.config.temperature, dim=-1)


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
    net = _Probabilities(copy.deepcopy(model).float().eval().to("cpu", memory_format=torch.contiguous_format))
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
    """The metadata written into an export: preprocessing, labels and architecture, as strings."""
    cfg = model.config
    pre = cfg.preprocess
    return {
        "imgsent.input": f"{INPUT_NAME}: float32 [batch, 3, {pre.image_size}, {pre.image_size}], RGB, "
        "(value / 255 - mean) / std",
        "imgsent.output": f"{OUTPUT_NAME}: float32 [batch, 3], softmax of logits / temperature over labels",
        "imgsent.labels": json.dumps(list(cfg.labels)),
        "imgsent.image_size": str(pre.image_size),
        "imgsent.resize_mode": pre.resize_mode,
        "imgsent.interpolation": pre.interpolation,
        "imgsent.mean": json.dumps(list(pre.mean)),
        "imgsent.std": json.dumps(list(pre.std)),
        "imgsent.architecture": cfg.architecture.name,
        "imgsent.config": json.dumps(cfg.to_dict(), sort_keys=True),
    }


def normalize_numpy(pixels: torch.Tensor, cfg: PreprocessConfig) -> np.ndarray:
    """uint8 batch ``[B, 3, S, S]`` -> contiguous float32 numpy, normalised as in the torch engine."""
    from imgsent.transforms import normalize

    return np.ascontiguousarray(normalize(pixels.contiguous(), cfg).numpy())
