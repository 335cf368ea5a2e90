"""The OpenVINO engine (CPU; float32 exact, or bfloat16 on request)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imgsent.config import LABELS, PreprocessConfig
from imgsent.errors import EngineError

CHUNK = 2
"""Images per inference request. Small chunks keep each request's activations in the core's
cache: on 2 cores, EfficientNet-Lite0 in float32 ran 190-200 img/s alone in chunks of 1-4 against
170-180 in chunks of 8-16, and ``imgsent classify`` ran 123-135 img/s in chunks of 1-2, 111-121
in chunks of 4 and 108-115 with each batch split once per stream."""


@functools.cache
def shared_core() -> object:
    """The process's one ``openvino.Core``, kept until exit.

    OpenVINO's CPU plugin gives the compiling thread its own signal stack and puts the previous
    one back when its ``Core`` is destroyed. Two cores destroyed in the order they were created
    leave the thread pointing at a freed stack, and the next signal handled there (a child
    process exiting, Ctrl-C) crashes the process. One core that lives as long as the process
    never does that.
    """
    import openvino as ov

    return ov.Core()


class OpenVinoEngine:
    """Run an exported ONNX model with OpenVINO on the CPU.

    OpenVINO's CPU plugin runs bf16 by default on CPUs with native bf16; this engine pins the
    inference precision to the requested ``dtype`` so float32 stays exact on every CPU. The
    normalisation is compiled into the model, so batches go in as the decoders made them
    (float32 pixels in [0, 255]) and OpenVINO folds the scaling into the first layer instead of
    the Python thread doing it between batches. The temperature is part of the exported graph.
    """

    name = "openvino"
    device = torch.device("cpu")

    def __init__(self, path: Path, preprocess: PreprocessConfig, *, dtype: torch.dtype = torch.float32, threads: int = 0) -> None:
        self.path = Path(path)
        self.preprocess = preprocess
        self.dtype = dtype
        self._input_dtype = np.float32  # what the decoders hand over (imgsent.transforms.load_pixels)
        self._core = shared_core()
        try:
            self._model = _with_normalisation(self._core.read_model(str(self.path)), preprocess, self._input_dtype)
        except Exception as exc:  # OpenVINO raises its own untyped errors
            raise EngineError(f"OpenVINO could not read {self.path}: {exc}") from None
        self._queues: dict[int, Any] = {}
        self.set_threads(threads)

    def set_threads(self, threads: int) -> None:
        """Compile for ``threads`` compute threads (0: OpenVINO's default); kept per thread count.

        The model is compiled for throughput: OpenVINO splits the threads into streams that each
        run their own requests on their own threads. Streams never wait on each other inside a
        layer, so they lose little when decoding workers take a core for a moment; on 2 cores
        ``imgsent classify`` ran 98 img/s this way against 79-84 with one two-thread stream.
        """
        if threads in self._queues:
            self._queue, self.threads = self._queues[threads], threads
            return
        import openvino as ov
        import openvino.properties as props
        import openvino.properties.hint as hints

        config: dict[str, object] = {
            hints.inference_precision: "bf16" if self.dtype == torch.bfloat16 else "f32",
            hints.performance_mode: hints.PerformanceMode.THROUGHPUT,
        }
        if threads > 0:
            config[props.inference_num_threads] = threads
        try:
            compiled = self._core.compile_model(self._model, "CPU", config)
            count = max(1, int(compiled.get_property(props.optimal_number_of_infer_requests)))
        except Exception as exc:
            raise EngineError(f"OpenVINO could not compile {self.path}: {exc}") from None
        self._queue = ov.AsyncInferQueue(compiled, count)
        self._queue.set_callback(_store_output)
        self._queues[threads] = self._queue
        self.threads = threads

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, 3, S, S]`` in [0, 255] -> float32 calibrated probabilities ``[B, 3]``.

        The batch goes to the streams in chunks of :data:`CHUNK` images, each stream taking the
        next chunk as soon as it is free, so the streams finish together and each chunk's
        activations stay in the core's cache. Batches too small to give every stream a full chunk
        are cut finer, so two images run on two streams (twice as fast on 2 cores).
        """
        inputs = np.ascontiguousarray(pixels.numpy(), dtype=self._input_dtype)
        probs = np.empty((len(inputs), len(LABELS)), dtype=np.float32)
        chunk = max(1, min(CHUNK, -(-len(inputs) // len(self._queue))))
        for start in range(0, len(inputs), chunk):
            self._queue.start_async([inputs[start : start + chunk]], probs[start : start + chunk], share_inputs=True)
        self._queue.wait_all()
        return torch.from_numpy(probs)


def _store_output(request: Any, out: np.ndarray) -> None:
    """Copy one finished chunk's probabilities into its rows of the batch's output."""
    out[...] = request.get_output_tensor(0).data


def _with_normalisation(model: object, cfg: PreprocessConfig, input_dtype: type) -> object:
    """``model`` taking ``input_dtype`` pixels, with ``(x - 255 mean) / (255 std)`` compiled in front of it,
    as :func:`imgsent.transforms.normalize`."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    source = ppp.input()
    source.tensor().set_element_type(ov.Type(input_dtype)).set_layout(ov.Layout("NCHW"))
    source.model().set_layout(ov.Layout("NCHW"))
    source.preprocess().convert_element_type(ov.Type.f32).mean([255.0 * m for m in cfg.mean]).scale([255.0 * s for s in cfg.std])
    return ppp.build()
