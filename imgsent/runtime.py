"""The runtime policy, in one place: device, dtype, compute threads and decoding workers.

Prediction, evaluation, dedup and training all ask this module; none of them counts cores
or picks a device on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal, Protocol

import torch

from imgsent.environment import available_cores
from imgsent.errors import InvalidConfigError

DeviceLike = str | torch.device
DtypeLike = Literal["auto", "float32", "bfloat16", "float16"] | torch.dtype
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: DeviceLike = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is passed to :class:`torch.device`.

    Raises:
        InvalidConfigError: The device string is not valid or not available.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise InvalidConfigError(f"Invalid device {device!r}. Use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'.") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidConfigError(f"device={device!r} was requested but CUDA is not available. Use device='auto' or 'cpu'.")
    return resolved


def resolve_dtype(dtype: DtypeLike, device: torch.device) -> torch.dtype:
    """``"auto"`` is bfloat16 (or float16 without bf16 support) autocast on CUDA and float32
    everywhere else, so CPU labels are the same on every x86 and ARM processor.

    Raises:
        InvalidConfigError: ``dtype`` is not one of the names above.

    Example:
        >>> resolve_dtype("float16", torch.device("cpu"))
        torch.float16
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in _DTYPES:
        raise InvalidConfigError(f"Invalid dtype {dtype!r}. Use one of: auto, {', '.join(_DTYPES)}.")
    return _DTYPES[dtype]


def default_workers(device: torch.device, engine: str = "torch") -> int:
    """Decoding workers when the caller does not say: enough to keep the device busy.

    With an exported-model engine on the CPU (ONNX Runtime, OpenVINO) there is one worker per
    core, up to 8: the engine's threads sleep while they wait, and a worker that is ahead of the
    model blocks on its full queue and gives its core back, so decoding and the forward pass share
    the cores as each needs them (on 2 cores, OpenVINO classified 78-97 img/s this way against
    69-74 with one worker and one engine thread).

    Example:
        >>> 1 <= default_workers(torch.device("cpu")) <= 4
        True
    """
    cores = available_cores()
    if device.type == "cuda":
        return max(1, min(16, cores - 1))
    if engine != "torch":
        return max(1, min(8, cores))
    return max(1, min(4, cores // 2))


def compute_threads(device: torch.device, workers: int, *, light: bool, engine: str = "torch") -> int | None:
    """PyTorch threads for a forward pass while ``workers`` processes decode, or ``None`` to leave them alone.

    Light models on PyTorch leave the decoding workers their cores: PyTorch's OpenMP threads
    spin while they wait, and oversubscribing (torch on every core plus busy workers) ran the
    default model 3x slower on 2 loaded cores than one torch thread did. Other engines are left
    alone (see :func:`default_workers`).
    """
    if device.type != "cpu" or workers <= 0 or not light or engine != "torch":
        return None
    return max(1, available_cores() - workers)


class ThreadControl(Protocol):
    """Anything whose compute threads can be read and set: an inference engine."""

    threads: int  # 0: the engine's default, one per core

    def set_threads(self, threads: int) -> None: ...


@contextlib.contextmanager
def capped_threads(threads: int | None, engine: ThreadControl | None = None) -> Iterator[None]:
    """Cap compute threads at ``threads`` inside the block and restore the previous count after.

    Args:
        threads: The cap; ``None`` changes nothing. The count is never raised.
        engine: The engine whose threads to cap; ``None`` for torch's intra-op threads.

    Example:
        >>> before = torch.get_num_threads()
        >>> with capped_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    if engine is None:
        previous, apply = torch.get_num_threads(), torch.set_num_threads
    else:
        previous, apply = engine.threads, engine.set_threads
    current = previous or available_cores()
    if threads is None or threads >= current:
        yield
        return
    apply(threads)
    try:
        yield
    finally:
        apply(previous)


def set_worker_threads(threads: int, engine: ThreadControl | None = None) -> None:
    """Give a worker (a Ray actor, a job slot with ``threads`` cores) that many compute threads.

    Sets torch's intra-op threads and, when given, the engine's own (ONNX Runtime and OpenVINO
    keep their thread pools apart from torch's, so setting torch's alone leaves them on every core).

    Args:
        threads: Compute threads, at least 1.
        engine: The worker's inference engine, or ``None`` for torch only.

    Raises:
        InvalidConfigError: ``threads`` is below 1.

    Example:
        >>> before = torch.get_num_threads()
        >>> set_worker_threads(1)
        >>> torch.get_num_threads()
        1
        >>> set_worker_threads(before)
    """
    if threads < 1:
        raise InvalidConfigError(f"threads must be at least 1, got {threads}.")
    torch.set_num_threads(threads)
    if engine is not None and engine.threads != threads:
        engine.set_threads(threads)


def worker_init(_: int) -> None:
    """DataLoader worker start-up: one torch thread per decoding process."""
    set_worker_threads(1)
