"""Ceilings: decode + resize alone on all cores, and the forward pass alone at its best settings."""

from __future__ import annotations

import sys
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmarks.common import cores, timed

_DECODE_STATE: dict[str, Any] = {}


def _init_decoder(method: str, image_size: int) -> None:
    """Pool initialiser: one torch thread per process, and the decode function for ``method``."""
    import torch

    from imgsent.config import PreprocessConfig
    from imgsent.data import DecodeDataset
    from imgsent.images import DEFAULT_MAX_PIXELS

    torch.set_num_threads(1)
    _DECODE_STATE["cfg"] = PreprocessConfig(image_size=image_size)
    _DECODE_STATE["method"] = method
    _DECODE_STATE["imgsent"] = DecodeDataset(_DECODE_STATE["cfg"], max_pixels=DEFAULT_MAX_PIXELS)


def _decode(path: str) -> int:
    """Decode and resize one file with the pool's method; returns 1 (one image)."""
    method = _DECODE_STATE["method"]
    cfg = _DECODE_STATE["cfg"]
    if method == "imgsent":  # the exact code the DataLoader workers run: draft decode, bicubic squash
        error = _DECODE_STATE["imgsent"][(0, path)][3]
        if error:
            raise RuntimeError(error)
    elif method == "pil_full_decode":  # the same resize without DCT scaling
        from PIL import Image

        from imgsent.transforms import preprocess

        with Image.open(path) as image:
            preprocess(image.convert("RGB"), cfg)
    elif method == "torchvision_decode_jpeg":  # libjpeg-turbo through torchvision, antialiased bicubic resize
        from torchvision.io import ImageReadMode, decode_jpeg, read_file
        from torchvision.transforms.v2.functional import InterpolationMode, resize

        pixels = decode_jpeg(read_file(path), mode=ImageReadMode.RGB)
        resize(pixels, [cfg.image_size, cfg.image_size], InterpolationMode.BICUBIC, antialias=True)
    else:
        raise ValueError(f"unknown decode method {method!r}")
    return 1


DECODE_METHODS = ("imgsent", "pil_full_decode", "torchvision_decode_jpeg")


def decode_ceiling(paths: list[str], *, image_size: int, method: str = "imgsent", processes: int | None = None) -> float:
    """Images per second for decode + resize alone, one process per core (pool start-up excluded)."""
    processes = processes or cores()
    context = get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with context.Pool(processes, initializer=_init_decoder, initargs=(method, image_size)) as pool:
        pool.map(_decode, paths[: processes * 2], chunksize=1)  # warm up every process
        start = time.perf_counter()
        done = sum(pool.imap_unordered(_decode, paths, chunksize=8))
        return done / (time.perf_counter() - start)


def forward_sweep(
    folder: Path,
    *,
    batch_sizes: list[int],
    dtypes: list[str],
    channels_last: list[bool],
    min_seconds: float,
    threads: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Forward-pass throughput of a model folder over batch size, dtype and memory format.

    Inputs are random normalised tensors made once per batch size; nothing else runs. bf16 here
    means bf16 weights and activations (CPU autocast is slower than casting the weights).

    Thread counts are swept too (default: 1 and all cores): on a small shared machine one
    busy neighbour can make a multi-threaded OpenMP forward pass far slower than one thread.

    Returns:
        One row per setting: batch_size, dtype, channels_last, threads, images_per_second.
    """
    import torch

    from imgsent.models.sentiment import SentimentModel

    previous = torch.get_num_threads()
    rows: list[dict[str, Any]] = []
    base = SentimentModel.from_folder(folder).eval()
    size = base.config.preprocess.image_size
    for dtype_name in dtypes:
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]
        for cl in channels_last:
            model = base.to(dtype)
            model = model.to(memory_format=torch.channels_last) if cl else model.to(memory_format=torch.contiguous_format)
            for n_threads, batch_size in [(t, b) for t in sorted(set(threads or [1, cores()])) for b in batch_sizes]:
                torch.set_num_threads(n_threads)
                x = torch.randn(batch_size, 3, size, size).to(dtype)
                if cl:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.inference_mode():
                    model(x)  # warm-up: oneDNN picks and caches kernels on first use

                    def step(model: torch.nn.Module = model, x: torch.Tensor = x) -> int:
                        model(x)
                        return x.shape[0]

                    rate = timed(step, min_seconds=min_seconds)
                rows.append(
                    {"batch_size": batch_size, "dtype": dtype_name, "channels_last": cl, "threads": n_threads,
                     "images_per_second": rate}
                )
    base.to(torch.float32)
    torch.set_num_threads(previous)
    return rows


def compiled_forward(folder: Path, *, batch_size: int, dtype: str, channels_last: bool, min_seconds: float) -> dict[str, Any]:
    """Throughput of ``torch.compile`` (inductor) at one setting; compile time reported apart."""
    import torch

    from imgsent.models.sentiment import SentimentModel

    torch.set_num_threads(cores())
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    model = SentimentModel.from_folder(folder).eval().to(torch_dtype)
    size = model.config.preprocess.image_size
    x = torch.randn(batch_size, 3, size, size).to(torch_dtype)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    compiled = torch.compile(model)
    with torch.inference_mode():
        start = time.perf_counter()
        compiled(x)
        compile_seconds = time.perf_counter() - start

        def step() -> int:
            compiled(x)
            return batch_size

        rate = timed(step, min_seconds=min_seconds)
    return {"batch_size": batch_size, "dtype": dtype, "channels_last": channels_last, "images_per_second": rate,
            "compile_seconds": compile_seconds}
