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
