"""The PyTorch engine: eager forward pass on any torch device, and :class:`Calibrated`, the output step every engine shares."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch
from torch import nn

from imgsent.transforms import normalize

if TYPE_CHECKING:
    from imgsent.models.sentiment import SentimentModel


class Calibrated(nn.Module):
    """A model's network followed by its calibration: ``softmax(logits / config.temperature)``.

    The one place the temperature is applied. :class:`TorchEngine` runs this module, and the ONNX
    export (:func:`imgsent.engines.export.export_onnx`) is traced from it, so ONNX Runtime,
    OpenVINO and a deployed ``.onnx`` file compute the same calibrated probabilities.
    Explanations differentiate the network's logits and take their probabilities from the
    predictor, so they never apply it again.
    """

    def __init__(self, model: SentimentModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels ``[B, 3, S, S]`` -> float32 probabilities ``[B, 3]``."""
        return torch.softmax(self.model(pixels).float() / self.model.config.temperature, dim=-1)


class TorchEngine:
    """Run a :class:`~imgsent.models.sentiment.SentimentModel` in PyTorch.

    On CUDA a reduced ``dtype`` means autocast; on CPU the weights are cast (CPU autocast is
    slower). CPU and CUDA run channels-last, which oneDNN and cuDNN convolutions prefer.
    """

    name = "torch"

    def __init__(self, model: SentimentModel, *, device: torch.device, dtype: torch.dtype) -> None:
        self.device = device
        self.dtype = dtype
        self.preprocess = model.config.preprocess
        self.model = model.eval().to(device)
        if device.type == "cpu" and dtype != torch.float32:
            self.model = self.model.to(dtype)
        self._channels_last = device.type in ("cuda", "cpu")
        if self._channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._calibrated = Calibrated(self.model)

    @property
    def threads(self) -> int:
        """torch's current intra-op threads."""
        return torch.get_num_threads()

    def set_threads(self, threads: int) -> None:
        """Set torch's intra-op threads (process-wide)."""
        torch.set_num_threads(threads)

    @torch.inference_mode()
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, 3, S, S]`` in [0, 255] -> float32 calibrated probabilities ``[B, 3]`` on the CPU."""
        pixels = pixels.to(self.device, non_blocking=True)
        if self._channels_last:
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            reduced = self.dtype != torch.float32
            autocast = torch.autocast("cuda", dtype=self.dtype) if reduced else contextlib.nullcontext()
            with autocast:
                probs = self._calibrated(normalize(pixels, self.preprocess))
        else:
            probs = self._calibrated(normalize(pixels, self.preprocess, dtype=self.dtype))
        return probs.float().cpu()
