"""The ONNX Runtime engine (CPU, float32)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from imgsent.config import PreprocessConfig
from imgsent.engines.export import INPUT_NAME, normalize_numpy
from imgsent.errors import EngineError


class OrtEngine:
    """Run an exported ONNX model with ONNX Runtime's CPU provider, in float32."""

    name = "onnxruntime"
    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(self, path: Path, preprocess: PreprocessConfig, *, threads: int = 0) -> None:
        self.path = Path(path)
        self.preprocess = preprocess
        self._sessions: dict[int, object] = {}
        self.set_threads(threads)

    def set_threads(self, threads: int) -> None:
        """Use ``threads`` intra-op threads (0: one per core); sessions are kept per thread count."""
        if threads in self._sessions:
            self._session, self.threads = self._sessions[threads], threads
            return
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle threads sleep instead of spinning, so decoding workers get the cores between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EngineError(f"ONNX Runtime could not load {self.path}: {exc}") from None
        self._sessions[threads] = self._session
        self.threads = threads

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, 3, S, S]`` in [0, 255] -> float32 calibrated probabilities ``[B, 3]`` (the graph applies the temperature)."""
        inputs = normalize_numpy(pixels, self.preprocess)
        (probs,) = self._session.run(None, {INPUT_NAME: inputs})
        return torch.from_numpy(np.ascontiguousarray(probs, dtype=np.float32))
