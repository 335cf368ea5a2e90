from __future__ import annotations

import pytest
import torch

from imgsent.errors import InvalidConfigError
from imgsent.runtime import (
    available_cores,
    compute_threads,
    default_workers,
    resolve_device,
    capped_threads,
)


def test_capped_threads_caps_and_restores():
    before = torch.get_num_threads()
    with capped_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), capped_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with capped_threads(None):
        assert torch.get_num_threads() == before
    with capped_threads(before + 8):  # never raised above the current count
        assert torch.get_num_threads() == before


def test_compute_threads_policy():
    cpu = torch.device("cpu")
    assert compute_threads(cpu, 0, light=True) is None  # no workers compete for the cores
    assert compute_threads(cpu, 2, light=False) is None  # heavy models keep every core
    assert compute_threads(torch.device("cuda"), 2, light=True) is None
    assert compute_threads(cpu, 10_000, light=True) == 1
    assert compute_threads(cpu, 1, light=True, engine="openvino") is None  # sleeping thread pools share the cores


def test_default_workers_are_bounded():
    assert 1 <= default_workers(torch.device("cpu")) <= 4
    assert default_workers(torch.device("cpu"), "openvino") == max(1, min(8, available_cores()))
    assert 1 <= default_workers(torch.device("cuda")) <= 16


def test_bad_device_is_a_typed_error():
    with pytest.raises(InvalidConfigError, match="Invalid device 'gpu0'"):
        resolve_device("gpu0")


class _Engine:
    """An engine with its own thread pool, as ONNX Runtime and OpenVINO have."""

    def __init__(self) -> None:
        self.threads = 0
        self.calls: list[int] = []

    def set_threads(self, threads: int) -> None:
        self.calls.append(threads)
        self.threads = threads


def test_set_worker_threads_sets_torch_and_the_engine():
    from imgsent.runtime import set_worker_threads

    before = torch.get_num_threads()
    engine = _Engine()
    try:
        set_worker_threads(1, engine)
        assert torch.get_num_threads() == 1 and engine.threads == 1
        set_worker_threads(1, engine)  # already there: the engine is not rebuilt
        assert engine.calls == [1]
        with pytest.raises(InvalidConfigError, match="threads must be at least 1, got 0"):
            set_worker_threads(0, engine)
    finally:
        torch.set_num_threads(before)


def test_ray_actor_gives_its_num_cpus_to_an_exported_engine(tiny_model_dir):
    """Ray's num_cpus reaches ONNX Runtime's (or OpenVINO's) own threads, not torch's only."""
    pytest.importorskip("onnxruntime")
    from imgsent.integrations.ray import _Classifier

    before = torch.get_num_threads()
    try:
        actor = _Classifier(str(tiny_model_dir), {"backend": "onnxruntime", "device": "cpu"}, "path", None,
                            batch_size=4, binary=False, threads=1)
        assert actor.predictor.backend == "onnxruntime"
        assert actor.predictor.engine.threads == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
