"""The runtime policy, in one place: device, dtype, compute threads and decoding workers.

Prediction, evaluation, dedup and training all ask this module; none of them counts cores
or picks a device on its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Literal, Protocol

import torch

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


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers(device: torch.device) -> int:
    """Decoding workers when the caller does not say: enough to keep the device busy.

    Example:
        >>> 1 <= default_workers(torch.device("cpu")) <= 4
        True
    """
    cores = available_cores()
    if device.type == "cuda":
        return max(1, min(16, cores - 1))
    return max(1, min(4, cores // 2))


def compute_threads(device: torch.device, workers: int, *, light: bool) -> int | None:
    """Torch threads for a forward pass while ``workers`` processes decode, or ``None`` to leave torch alone.

    Light CPU models spend as long decoding as computing, so they leave the decoding workers their
    cores: oversubscribing (torch on every core plus busy workers) makes OpenMP threads wait on each
    other and runs the default model 3x slower on 2 cores than one torch thread does.
    """
    if device.type != "cpu" or workers <= 0 or not light:
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


def worker_init(_: int) -> None:
    """DataLoader worker start-up: one torch thread per decoding process."""
    torch.set_num_threads(1)
