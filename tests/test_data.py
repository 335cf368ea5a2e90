from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from imgsent.config import PreprocessConfig
from imgsent.data import (
    Augment,
    DecodeDataset,
    iter_batches,
    iter_row_batches,
    mp_context,
)

CFG = PreprocessConfig(image_size=24)


def _rows(photo_dir: Path) -> list[str]:
    return sorted(str(p) for p in photo_dir.iterdir()) + [str(photo_dir / "missing.jpg")]


def test_stream_keeps_order_positions_and_error_rows(photo_dir):
    sources = _rows(photo_dir)
    batches = list(iter_batches(iter(sources), CFG, batch_size=4, workers=0))
    assert [b.indices.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6]]
    assert [s for b in batches for s in b.sources] == sources
    last = batches[-1]
    assert last.ok == [True, True, False] and last.pixels.shape == (2, 3, 24, 24)
    assert "missing.jpg" in (last.errors[-1] or "")
    assert last.mask.tolist() == last.ok
    assert last.pixels.dtype == torch.float32 and last.sizes[-1] is None and all(last.sizes[:2])


def test_training_rows_decode_like_prediction_without_augmentation(photo_dir):
    rows = _rows(photo_dir)
    streamed = torch.cat([b.pixels for b in iter_batches(rows, CFG, batch_size=3, workers=0)])
    decoded = list(iter_row_batches(rows, CFG, [[6, 0, 1], [2, 3, 4, 5]], workers=0))
    indices, pixels, ok = decoded[0]
    assert indices.tolist() == [6, 0, 1] and ok.tolist() == [False, True, True]
    assert torch.equal(pixels, streamed[:2])
    assert torch.equal(decoded[1][1], streamed[2:6])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker start-up cost is only small with fork")
def test_augmentation_is_a_pure_function_of_seed_epoch_and_row(photo_dir):
    rows = _rows(photo_dir)[:6]
    batches = [[0, 1, 2], [3, 4, 5]]

    def pixels(epoch: int, workers: int) -> torch.Tensor:
        aug = Augment(seed=7, epoch=epoch)
        return torch.cat([p for _, p, _ in iter_row_batches(rows, CFG, batches, workers=workers, augment=aug)])

    first = pixels(0, workers=0)
    assert torch.equal(first, pixels(0, workers=2))  # the same in any worker process
    assert not torch.equal(first, pixels(1, workers=0))  # a new epoch draws new crops
    state = torch.get_rng_state()
    pixels(0, workers=2)
    assert torch.equal(state, torch.get_rng_state())  # loading never moves the global RNG


def test_streaming_dataset_has_no_length():
    with pytest.raises(TypeError, match="no length"):
        len(DecodeDataset(CFG))
    assert len(DecodeDataset(CFG, rows=["a", "b"])) == 2


def test_one_worker_start_policy():
    expected = "fork" if sys.platform.startswith("linux") else "spawn"
    assert mp_context() == expected
