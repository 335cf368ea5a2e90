"""The GPU JPEG decode path's batching and per-file CPU fallback, run on the CPU.

``torchvision.io.decode_jpeg`` also decodes on the CPU, so the same code runs here with
``device="cpu"``; only the nvJPEG device itself is left to ``benchmarks/gpu_check.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from imgsent.config import PreprocessConfig
from imgsent.engines.gpu_decode import decode_batch, gpu_decode_supported, iter_gpu_batches, read_jpeg_bytes
from tests.conftest import make_photo

CPU = torch.device("cpu")
CFG = PreprocessConfig(image_size=32)


def _cpu_decoder(calls: list[int]):
    from torchvision.io import ImageReadMode, decode_jpeg

    def decode(data: list[torch.Tensor]) -> list[torch.Tensor]:
        calls.append(len(data))
        return decode_jpeg(data, mode=ImageReadMode.RGB, device="cpu", apply_exif_orientation=True)

    return decode


@pytest.fixture
def mixed(tmp_path: Path) -> list[str]:
    good = [make_photo(tmp_path / f"g{i}.jpg", size=(80, 60), seed=i) for i in range(3)]
    png = make_photo(tmp_path / "p.png", seed=7)
    broken = tmp_path / "broken.jpg"
    data = good[0].read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # a valid header, then the scan stops half-way
    return [str(good[0]), str(png), str(broken), str(good[1]), str(tmp_path / "missing.jpg"), str(good[2])]


def test_policy():
    assert not gpu_decode_supported(CFG, CPU)
    assert gpu_decode_supported(CFG, torch.device("cuda"))
    assert not gpu_decode_supported(PreprocessConfig(image_size=32, resize_mode="crop"), torch.device("cuda"))


def test_only_jpeg_paths_go_to_the_device_decoder(mixed):
    assert read_jpeg_bytes(mixed[0]) is not None
    assert read_jpeg_bytes(mixed[1]) is None  # PNG: CPU
    assert read_jpeg_bytes(mixed[4]) is None  # missing: the CPU decoder reports it
    assert read_jpeg_bytes(mixed[0], max_pixels=100) is None  # too many pixels: the CPU decoder refuses it
    assert read_jpeg_bytes(b"\xff\xd8\xff") is None  # bytes in memory: CPU


def test_failed_batch_call_falls_back_file_by_file(mixed):
    calls: list[int] = []
    data = [read_jpeg_bytes(s) for s in mixed]
    batch = decode_batch(mixed, data, CFG, CPU, decoder=_cpu_decoder(calls))
    assert batch.ok == [True, True, False, True, False, True]
    assert batch.pixels.shape == (4, 3, 32, 32) and batch.pixels.dtype == torch.float32
    assert "missing.jpg" in batch.errors[4] and batch.errors[2]
    assert batch.sizes == [(80, 60), (64, 48), None, (80, 60), None, (80, 60)]
    assert calls[0] == 4 and calls[1:] == [1, 1, 1, 1]  # one batched call over 4 JPEGs, then one per file


def test_gpu_resize_is_close_to_the_cpu_path(mixed):
    from imgsent.transforms import load_pixels

    batch = decode_batch([mixed[0]], [read_jpeg_bytes(mixed[0])], CFG, CPU, decoder=_cpu_decoder([]))
    reference = load_pixels(mixed[0], CFG).pixels
    diff = (batch.pixels[0] - reference).abs()
    assert diff.mean() < 4  # different decoders and resamplers, the same picture


def test_the_cpu_fallback_is_the_one_decoding_path(mixed):
    from imgsent.transforms import load_pixels

    batch = decode_batch(mixed, [None] * len(mixed), CFG, CPU, decoder=_cpu_decoder([]))
    expected = [load_pixels(s, CFG).pixels for i, s in enumerate(mixed) if batch.ok[i]]
    assert torch.equal(batch.pixels, torch.stack(expected))


def test_stream_keeps_order_with_workers(mixed):
    batches = list(iter_gpu_batches(mixed * 2, CFG, batch_size=4, workers=1, device=CPU, decoder=_cpu_decoder([])))
    assert [s for b in batches for s in b.sources] == [s for s in mixed * 2]
    assert sum(b.pixels.shape[0] for b in batches) == 8
