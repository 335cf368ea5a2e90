"""Inference engines: the same forward pass run by PyTorch, ONNX Runtime or OpenVINO.

Every engine takes a float32 batch ``[B, 3, S, S]`` of pixels in [0, 255] (what
:func:`imgsent.transforms.load_pixels` makes) and returns float32 calibrated probabilities
``[B, 3]`` on the CPU; the temperature is applied by
:class:`~imgsent.engines.torch_engine.Calibrated`, which the ONNX export is traced from. ONNX Runtime and OpenVINO run an ONNX export of the
model, made once and cached (see :mod:`imgsent.engines.export`); they are optional extras
(``pip install 'imgsent[cpu]'``) and are imported only when chosen.
"""

from __future__ import annotations

from imgsent.engines.base import BACKENDS, Backend, Engine, load_engine, resolve_backend
from imgsent.engines.export import export_onnx

__all__ = ["BACKENDS", "Backend", "Engine", "export_onnx", "load_engine", "resolve_backend"]
