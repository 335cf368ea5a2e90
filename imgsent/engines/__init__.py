"""Inference engines: the same forward pass run by PyTorch, ONNX Runtime or OpenVINO.

Every engine takes a float32 batch ``[B, 3, S, S]`` of pixels in [0, 255] (what
:func:`imgsent.transforms.load_pixels` makes) and returns float32 calibrated probabilities
``[B, 3]`` on the CPU; the temperature is applied by
:class:`~imgsent.engines.torch_engine.Calibrated`, which the ONNX export is traced from.
:func:`load_engine` is the one factory. ONNX Runtime and OpenVINO run an ONNX export of the
model, made once and kept in the engine cache (:mod:`imgsent.engines.cache`, listed and cleared
with ``imgsent cache``). OpenVINO and ONNX are core dependencies; ONNX Runtime comes with
``pip install 'imgsent[cpu]'``. Each is imported only when chosen.
"""

from __future__ import annotations

from imgsent.engines.base import BACKENDS, Backend, Engine, describe_engine, load_engine, resolve_backend
from imgsent.engines.export import export_onnx

__all__ = ["BACKENDS", "Backend", "Engine", "describe_engine", "export_onnx", "load_engine", "resolve_backend"]
