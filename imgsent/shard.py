"""Split a classify job into shards that any scheduler can run: SLURM arrays, Kubernetes, ``torchrun``.

A file belongs to shard ``K`` of ``N`` when a stable hash (BLAKE2b) of its path *relative to the
folder it was found in* is ``K`` modulo ``N``. The split does not depend on listing order, on the
machine, or on where the folder is mounted, so ``N`` independent jobs cover every file exactly
once. Shards are numbered from 0, like ``RANK`` and ``SLURM_ARRAY_TASK_ID`` with ``--array=0-N``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from imgsent.environment import cuda_index, launch_from_env
from imgsent.errors import InvalidConfigError
from imgsent.scan import iter_image_files


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count`` equal-by-hash parts of an input listing.

    Attributes:
        index: This part, from 0 to ``count - 1``.
        count: Number of parts.

    Example:
        >>> Shard.parse("1/3")
        Shard(index=1, count=3)
        >>> [Shard(k, 3).contains("2026/beach.jpg") for k in range(3)]
        [False, True, False]
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise InvalidConfigError(
                f"Invalid shard {self.index}/{self.count}: use K/N with N >= 1 and 0 <= K < N "
                f"(shards are numbered from 0, e.g. 0/3, 1/3, 2/3)."
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Read ``"K/N"`` (e.g. ``"0/8"``).

        Raises:
            InvalidConfigError: The text is not ``K/N`` with ``0 <= K < N``.
        """
        index, sep, count = text.strip().partition("/")
        try:
            if not sep:
                raise ValueError
            return cls(int(index), int(count))
        except ValueError:
            raise InvalidConfigError(
                f"Invalid shard {text!r}: use K/N with 0 <= K < N, e.g. --shard 0/4 ... --shard 3/4."
            ) from None

    def contains(self, key: str) -> bool:
        """Whether the file with relative path ``key`` belongs to this shard."""
        return shard_of(key, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(key: str, count: int) -> int:
    """The shard (0 to ``count - 1``) of a relative path; ``/`` and ``\\`` are the same separator.

    Example:
        >>> shard_of("2026/beach.jpg", 3), shard_of("2026\\\\beach.jpg", 3)
        (1, 1)
    """
    data = key.replace("\\", "/").encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") % count


def shard_key(path: str, roots: Iterable[str]) -> str:
    """The path relative to the deepest folder in ``roots`` that holds it, else the path itself.

    Example:
        >>> shard_key("/mnt/a/photos/2026/x.jpg", ["/mnt/a/photos"])
        '2026/x.jpg'
    """
    best = ""
    for root in roots:
        prefix = os.path.join(root, "")
        if path.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return os.path.normpath(path[len(best) :]).replace(os.sep, "/")


def iter_shard_files(
    paths: Iterable[str | os.PathLike[str]], shard: Shard | None, *, recursive: bool = False
) -> Iterator[str]:
    """Yield the image files under ``paths`` (as :func:`~imgsent.scan.iter_image_files`) that fall in ``shard``.

    Files found in a folder are keyed by their path relative to that folder; files named
    explicitly by their own normalised path. ``shard=None`` yields every file.
    """
    paths = [os.fspath(p) for p in paths]
    files = iter_image_files(paths, recursive=recursive)
    if shard is None:
        yield from files
        return
    roots = [p for p in paths if os.path.isdir(p)]
    for path in files:
        if shard.contains(shard_key(path, roots)):
            yield path


@dataclass(frozen=True)
class DistributedShard:
    """What ``torchrun`` (or any launcher setting ``RANK``/``WORLD_SIZE``) asks of this process.

    Attributes:
        shard: ``RANK/WORLD_SIZE``.
        local_rank: ``LOCAL_RANK``: the GPU of this process on its host.
    """

    shard: Shard
    local_rank: int

    def device(self, requested: str = "auto") -> str:
        """``cuda:LOCAL_RANK`` when ``requested`` is ``"auto"`` and CUDA is present, else ``requested``.

        Raises:
            InvalidConfigError: The host has fewer CUDA devices than processes (see :func:`imgsent.environment.cuda_index`).
        """
        if requested != "auto":
            return requested
        import torch

        if torch.cuda.is_available():
            return f"cuda:{cuda_index(self.local_rank, torch.cuda.device_count())}"
        return requested


def shard_from_env(environ: Mapping[str, str] | None = None) -> DistributedShard | None:
    """The shard set by ``torchrun`` through ``RANK`` and ``WORLD_SIZE``; ``None`` outside a launch of 2+.

    Raises:
        InvalidConfigError: ``RANK`` or ``WORLD_SIZE`` is set but not a valid integer pair.

    Example:
        >>> shard_from_env({"RANK": "2", "WORLD_SIZE": "4", "LOCAL_RANK": "0"})
        DistributedShard(shard=Shard(index=2, count=4), local_rank=0)
        >>> shard_from_env({}) is None
        True
    """
    launch = launch_from_env(environ)
    if not launch.distributed:
        return None
    return DistributedShard(Shard(launch.rank, launch.world_size), launch.local_rank)


def part_path(output: str | os.PathLike[str], shard: Shard) -> Path:
    """The part file a shard writes under ``torchrun``: ``out.csv`` -> ``out.part-00002-of-00004.csv``.

    Example:
        >>> part_path("results/out.csv", Shard(2, 4)).as_posix()
        'results/out.part-00002-of-00004.csv'
    """
    output = Path(output)
    return output.with_name(f"{output.stem}.part-{shard.index:05d}-of-{shard.count:05d}{output.suffix}")


@dataclass(frozen=True)
class ShardPlan:
    """What one process of a sharded classify run does.

    Attributes:
        shard: The part of the input to classify; ``None`` for all of it.
        output: Where this process writes (a part file under ``torchrun``).
        device: The device to load the model on.
        launched: Whether the shard comes from a ``torchrun`` launch.
    """

    shard: Shard | None
    output: Path | None
    device: str
    launched: bool = False


def plan_shard(
    shard: str | Shard | None,
    output: str | os.PathLike[str] | None,
    *,
    device: str = "auto",
    environ: Mapping[str, str] | None = None,
) -> ShardPlan:
    """Decide the shard, output file and device of this process.

    An explicit ``shard`` (``--shard K/N``) is used as given, with ``output`` unchanged: each job
    names its own file. Under ``torchrun`` (``WORLD_SIZE`` >= 2) the shard is ``RANK/WORLD_SIZE``,
    each rank writes :func:`part_path` of ``output``, and ``device="auto"`` becomes
    ``cuda:LOCAL_RANK``.

    Raises:
        InvalidConfigError: Both ``shard`` and a ``torchrun`` launch, or a ``torchrun`` launch
            writing to stdout, or a malformed shard.

    Example:
        >>> plan_shard(None, "out.csv", environ={"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}, device="cpu")
        ShardPlan(shard=Shard(index=1, count=2), output=PosixPath('out.part-00001-of-00002.csv'), device='cpu', launched=True)
    """
    explicit = Shard.parse(shard) if isinstance(shard, str) else shard
    launched = shard_from_env(environ)
    if launched is None:
        return ShardPlan(explicit, None if output is None else Path(output), device)
    if explicit is not None:
        raise InvalidConfigError(
            f"--shard {explicit} was given inside a torchrun launch of {launched.shard.count} processes, "
            "which already shards the input by RANK/WORLD_SIZE. Drop --shard, or run without torchrun."
        )
    if output is None:
        raise InvalidConfigError(
            "Under torchrun every rank writes its own part file: pass --output (e.g. -o out.csv gives "
            f"{part_path('out.csv', launched.shard)} on this rank)."
        )
    return ShardPlan(launched.shard, part_path(output, launched.shard), launched.device(device), launched=True)


__all__ = [
    "DistributedShard",
    "Shard",
    "ShardPlan",
    "iter_shard_files",
    "part_path",
    "plan_shard",
    "shard_from_env",
    "shard_key",
    "shard_of",
]
