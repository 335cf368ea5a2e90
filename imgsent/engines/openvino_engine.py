"""The OpenVINO engine (CPU; float32 exact, or bfloat16 on request)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imgsent.config import PreprocessConfig
from imgsent.errors import EngineError


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
    (uint8, or float32 for models that resize without antialiasing) and OpenVINO folds the
    scaling into the first layer instead of the Python thread doing it between batches.
    """

    name = "openvino"
    device = torch.device("cpu")

    def __init__(self, path: Path, preprocess: PreprocessConfig, *, dtype: torch.dtype = torch.float32, threads: int = 0) -> None:
        self.path = Path(path)
        self.preprocess = preprocess
        self.dtype = dtype
        # What the decoders hand over: uint8, or float32 when the resize skips antialiasing.
        self._input_dtype = np.uint8 if preprocess.resize_antialias else np.float32
        self._core = shared_core()
        try:
            self._model = _with_normalisation(self._core.read_model(str(self.path)), preprocess, self._input_dtype)
        except Exception as exc:  # OpenVINO raises its own untyped errors
            raise EngineError(f"OpenVINO could not read {self.path}: {exc}") from None
        self._requests: dict[int, list[Any]] = {}
        self.set_threads(threads)

    def set_threads(self, threads: int) -> None:
        """Compile for ``threads`` compute threads (0: OpenVINO's default); kept per thread count.

        The model is compiled for throughput: OpenVINO splits the threads into streams that each
        run part of a batch on their own threads. Streams never wait on each other inside a
        layer, so they lose little when decoding workers take a core for a moment; on 2 cores
        ``imgsent classify`` ran 98 img/s this way against 79-84 with one two-thread stream.
        """
        if threads in self._requests:
            self._streams, self.threads = self._requests[threads], threads
            return
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
        self._streams = [compiled.create_infer_request() for _ in range(count)]
        self._requests[threads] = self._streams
        self.threads = threads

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 batch ``[B, 3, S, S]`` -> float32 probabilities ``[B, 3]``, the batch split across the streams."""
        inputs = np.ascontiguousarray(pixels.numpy(), dtype=self._input_dtype)
        parts = np.array_split(inputs, max(1, min(len(self._streams), len(inputs))))
        running = self._streams[: len(parts)]
        for request, part in zip(running, parts):
            request.start_async([part], share_inputs=True)
        for request in running:
            request.wait()
        probs = [np.array(request.get_output_tensor(0).data, dtype=np.float32) for request in running]
        return torch.from_numpy(np.concatenate(probs))


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
