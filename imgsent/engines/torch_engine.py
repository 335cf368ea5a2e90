"""The PyTorch engine: eager forward pass on any torch device."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch

from imgsent.transforms import normalize

if TYPE_CHECKING:
    from imgsent.models.sentiment import SentimentModel


class TorchEngine:
    """Run a :class:`~imgsent.models.sentiment.SentimentModel` in PyTorch.

    On CUDA a reduced ``dtype`` means autocast; on CPU the weights are cast (CPU autocast is
    slower). CPU and CUDA run channels-last, which oneDNN and cuDNN convolutions prefer.
    """

    name = "torch"

    def __init__(self, model: SentimentModel, *, device: torch.device, dtype: torch.dtype,
                 graph: str = "probabilities") -> None:
        self.device = device
        self.graph = graph  # "features": forward returns the pooled backbone features instead
        self.dtype = dtype
        self.preprocess = model.config.preprocess
        self.temperature = model.config.temperature
        self.model = model.eval().to(device)
        if device.type == "cpu" and dtype != torch.float32:
            self.model = self.model.to(dtype)
        self._channels_last = device.type in ("cuda", "cpu")
        if self._channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    @property
    def threads(self) -> int:
        """torch's current intra-op threads."""
        return torch.get_num_threads()

    def set_threads(self, threads: int) -> None:
        """Set torch's intra-op threads (process-wide)."""
        torch.set_num_threads(threads)

    @torch.inference_mode()
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 batch ``[B, 3, S, S]`` -> float32 probabilities ``[B, 3]`` on the CPU."""
        pixels = pixels.to(self.device, non_blocking=True)
        if self._channels_last:
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            reduced = self.dtype != torch.float32
            autocast = torch.autocast("cuda", dtype=self.dtype) if reduced else contextlib.nullcontext()
            with autocast:
                if self.graph == "features":
                    return self.model.net.features(normalize(pixels, self.preprocess)).float().cpu()
                logits = self.model(normalize(pixels, self.preprocess))
        else:
            if self.graph == "features":
                return self.model.net.features(normalize(pixels, self.preprocess, dtype=self.dtype)).float().cpu()
            logits = self.model(normalize(pixels, self.preprocess, dtype=self.dtype))
        return torch.softmax(logits.float() / self.temperature, dim=-1).cpu()
