"""Distributed setup: joins the process group that torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` describe
(read by :func:`imgsent.environment.launch_from_env`).

A single process is a world of size 1, so the trainer, the probe and the pipeline run the same
code with and without torchrun.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from imgsent.environment import cuda_index, launch_from_env
from imgsent.runtime import resolve_device


def process_rank() -> int:
    """This process's rank under torchrun (``RANK``), 0 otherwise."""
    return launch_from_env().rank


def world_size() -> int:
    """Number of processes under torchrun (``WORLD_SIZE``), 1 otherwise."""
    return launch_from_env().world_size


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a (possibly single-process) run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str) -> DistEnv:
    """Read torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and join the process group if needed.

    Uses NCCL on CUDA and gloo on CPU. A group initialised by the caller is reused (and left open).
    """
    world = world_size()
    if world <= 1:
        return DistEnv(0, 1, 0, resolve_device(device), False)
    rank, local_rank = process_rank(), launch_from_env().local_rank
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        resolved = torch.device("cuda", cuda_index(local_rank, torch.cuda.device_count()))
        torch.cuda.set_device(resolved)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo")
    return DistEnv(rank, world, local_rank, resolved, owns)


def teardown_distributed(env: DistEnv, *, clean: bool = True) -> None:
    """Leave the process group if :func:`setup_distributed` created it (waiting for the others if ``clean``)."""
    if env.owns_group and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce(env: DistEnv, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Sum (or max) a tensor over ranks; returns it on CPU. A no-op in a single process."""
    if not env.distributed:
        return tensor.cpu()
    work = tensor.to(env.device).clone()
    dist.all_reduce(work, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return work.cpu()


def gather_rng_states(env: DistEnv) -> dict[str, torch.Tensor]:
    """The torch (and CUDA) RNG state of every rank, as uint8 tensors keyed ``rng.<kind>.rank<r>``."""
    local = {"torch": torch.get_rng_state()}
    if env.device.type == "cuda":
        local["cuda"] = torch.cuda.get_rng_state(env.device)
    out: dict[str, torch.Tensor] = {}
    for kind, state in local.items():
        if env.distributed:
            parts = [torch.empty_like(state, device=env.device) for _ in range(env.world_size)]
            dist.all_gather(parts, state.to(env.device))
        else:
            parts = [state]
        for rank, part in enumerate(parts):
            out[f"rng.{kind}.rank{rank}"] = part.cpu()
    return out


def restore_rng_states(env: DistEnv, tensors: dict[str, torch.Tensor], seed: int) -> bool:
    """Restore this rank's RNG states; returns False (and reseeds) when the checkpoint lacks them."""
    state = tensors.get(f"rng.torch.rank{env.rank}")
    if state is None:
        torch.manual_seed(seed + env.rank)
        return False
    torch.set_rng_state(state)
    cuda = tensors.get(f"rng.cuda.rank{env.rank}")
    if cuda is not None and env.device.type == "cuda":
        torch.cuda.set_rng_state(cuda, env.device)
    return True
