"""Environment policy, read in one place: offline mode, the cache home, launcher variables and usable cores.

Every imgsent module that depends on an environment variable asks this module; none reads
``os.environ`` on its own. Offline mode uses huggingface_hub's own parsing, so imgsent and the
Hub client agree on what ``HF_HUB_OFFLINE`` means. Thread counts are a runtime decision and live
in :mod:`imgsent.runtime`, which counts cores with :func:`available_cores`.

This module imports neither torch nor huggingface_hub at import time.

Variables:
    ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``): never use the network.
    ``IMGSENT_CACHE``: imgsent's cache home (default ``$XDG_CACHE_HOME/imgsent``, else
    ``~/.cache/imgsent``); the engine cache and the paper-model cache are folders in it.
    ``IMGSENT_PAPER_MODELS_URL``: a mirror of the authors' release files.
    ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``: set by ``torchrun`` and other launchers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from imgsent.errors import InvalidConfigError

CACHE_ENV = "IMGSENT_CACHE"
"""Names imgsent's cache home."""
PAPER_URL_ENV = "IMGSENT_PAPER_MODELS_URL"
"""Names a mirror of the authors' release files."""
_TRUE = {"1", "ON", "YES", "TRUE"}  # huggingface_hub.constants._is_true, when that private name is gone


def is_offline(local_files_only: bool | None = None) -> bool:
    """Whether a call must not use the network: ``local_files_only``, or offline mode in the environment.

    Offline mode is huggingface_hub's setting (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``,
    parsed as huggingface_hub parses it), also when the variable was set after huggingface_hub
    was imported.

    Example:
        >>> is_offline(True)
        True
    """
    if local_files_only:
        return True
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return True
    is_true = getattr(constants, "_is_true", lambda value: (value or "").upper() in _TRUE)
    return bool(is_true(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")))


def cache_home(*parts: str) -> Path:
    """imgsent's cache home, or a folder in it: ``$IMGSENT_CACHE``, else ``$XDG_CACHE_HOME/imgsent``,
    else ``~/.cache/imgsent`` (the rule huggingface_hub follows for its own home).

    Example:
        >>> cache_home("engines").name
        'engines'
    """
    base = os.environ.get(CACHE_ENV)
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "imgsent")
    return Path(base, *parts).expanduser()


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, as a job scheduler sets it).

    Example:
        >>> available_cores() >= 1
        True
    """
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def paper_models_url(default: str) -> str:
    """Where the authors' release files are fetched from: ``$IMGSENT_PAPER_MODELS_URL``, else ``default``."""
    return (os.environ.get(PAPER_URL_ENV) or default).rstrip("/")


@dataclass(frozen=True)
class Launch:
    """This process's place in a launch by ``torchrun`` (or any launcher that sets the same variables).

    Attributes:
        rank: ``RANK``, 0 outside a launch.
        world_size: ``WORLD_SIZE``, 1 outside a launch.
        local_rank: ``LOCAL_RANK``, else ``RANK``: this process's index on its host.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """Whether two or more processes were launched."""
        return self.world_size > 1

    def cuda_index(self, device_count: int) -> int:
        """The CUDA device of this process on its host (see :func:`cuda_index`).

        Example:
            >>> Launch(3, 4, 1).cuda_index(2)
            1
        """
        return cuda_index(self.local_rank, device_count)


def cuda_index(local_rank: int, device_count: int) -> int:
    """The one rule for a launched process's CUDA device: ``LOCAL_RANK``, one device per process.

    Raises:
        InvalidConfigError: The host has fewer devices than ``local_rank + 1``; sharing a device
            between launched processes is refused (NCCL cannot run two ranks on one GPU).

    Example:
        >>> cuda_index(1, 2)
        1
    """
    if not 0 <= local_rank < device_count:
        raise InvalidConfigError(
            f"LOCAL_RANK={local_rank} but this host has {device_count} CUDA device(s): each process "
            f"needs its own. Start at most {device_count} processes per host (torchrun --nproc-per-node "
            f"{max(device_count, 1)}), or pass an explicit device such as --device cuda:0 or cpu."
        )
    return local_rank


def launch_from_env(environ: Mapping[str, str] | None = None) -> Launch:
    """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; a process outside a launch is rank 0 of 1.

    Raises:
        InvalidConfigError: A variable is set but is not an integer, or the rank is out of range.

    Example:
        >>> launch_from_env({"RANK": "2", "WORLD_SIZE": "4", "LOCAL_RANK": "0"})
        Launch(rank=2, world_size=4, local_rank=0)
        >>> launch_from_env({})
        Launch(rank=0, world_size=1, local_rank=0)
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return Launch()
    try:
        world, rank = int(env["WORLD_SIZE"]), int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", rank))
    except ValueError:
        raise InvalidConfigError(
            f"RANK={env.get('RANK')!r}, WORLD_SIZE={env.get('WORLD_SIZE')!r} and LOCAL_RANK={env.get('LOCAL_RANK')!r} "
            "must be integers (they are set by torchrun)."
        ) from None
    if world < 1 or not 0 <= rank < world or local_rank < 0:
        raise InvalidConfigError(
            f"RANK={rank} and WORLD_SIZE={world} do not describe a launch: RANK must be in 0..WORLD_SIZE-1 "
            f"and LOCAL_RANK (here {local_rank}) at least 0. Check the launcher's settings."
        )
    return Launch(rank, world, local_rank)
