"""load_pixels, the one decoding path: policy fields, return type, sizes, and every input kind."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgsent.config import PreprocessConfig
from imgsent.errors import ImageDecodeError, InvalidConfigError
from imgsent.transforms import LETTERBOX_FILL, load_pixels, preprocess

CFG = PreprocessConfig(image_size=64)


def _photo(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A smooth photo-like image (JPEG-friendly), so draft scaling changes pixels only a little."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)


@pytest.fixture
def large_jpeg(tmp_path: Path) -> Path:
    path = tmp_path / "large.jpg"
    _photo((1600, 1200)).save(path, quality=92)
    return path


def test_pixels_are_always_float32_in_0_255(large_jpeg: Path) -> None:
    tf_like = PreprocessConfig(image_size=64, resize_antialias=False, interpolation="bilinear")
    for cfg in (CFG, tf_like):
        pixels, size = load_pixels(large_jpeg, cfg)
        assert pixels.dtype == torch.float32 and pixels.shape == (3, 64, 64) and size == (1600, 1200)
        assert 0.0 <= float(pixels.min()) and float(pixels.max()) <= 255.0
    antialiased = load_pixels(large_jpeg, CFG).pixels
    assert torch.equal(antialiased, antialiased.round())  # Pillow's 8-bit output, as float32
    assert preprocess(Image.open(large_jpeg).convert("RGB"), CFG).dtype == torch.float32


def test_jpeg_draft_follows_the_config(large_jpeg: Path) -> None:
    full = Image.open(large_jpeg).convert("RGB")
    drafted = Image.open(large_jpeg)
    drafted.draft("RGB", (64, 64))
    drafted = drafted.convert("RGB")
    assert drafted.size == (200, 150)  # 1/8
    assert torch.equal(load_pixels(large_jpeg, CFG).pixels, preprocess(drafted, CFG))
    exact = PreprocessConfig(image_size=64, jpeg_draft=False)
    assert torch.equal(load_pixels(large_jpeg, exact).pixels, preprocess(full, exact))
    assert not torch.equal(load_pixels(large_jpeg, CFG).pixels, load_pixels(large_jpeg, exact).pixels)


def test_a_training_crop_decodes_every_pixel(large_jpeg: Path) -> None:
    seen: list[tuple[int, int]] = []

    def crop(image: Image.Image) -> Image.Image:
        seen.append(image.size)
        return image

    load_pixels(large_jpeg, CFG, crop=crop)
    assert seen == [(1600, 1200)]


def test_reducing_gap_is_the_configs(tmp_path: Path) -> None:
    path = tmp_path / "large.png"
    image = _photo((3000, 2000))
    image.save(path)
    for gap in (3.0, None):
        cfg = PreprocessConfig(image_size=64, reducing_gap=gap)
        expected = np.asarray(image.resize((64, 64), Image.Resampling.BICUBIC, reducing_gap=gap))
        assert np.array_equal(load_pixels(path, cfg).pixels.permute(1, 2, 0).numpy(), expected)
    with pytest.raises(InvalidConfigError, match=r"preprocess.reducing_gap must be a number in \[1.0, 100.0\], got 0.5"):
        PreprocessConfig(reducing_gap=0.5)


def test_exif_orientation_gives_the_displayed_size(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed portrait
    path = tmp_path / "rotated.jpg"
    _photo((1600, 1200)).save(path, quality=92, exif=exif)
    pixels, size = load_pixels(path, PreprocessConfig(image_size=64, resize_mode="letterbox"))
    assert size == (1200, 1600)
    assert pixels[:, :, :4].eq(torch.tensor(LETTERBOX_FILL, dtype=torch.float32).view(3, 1, 1)).all()  # bars left/right


def test_every_input_kind_gives_the_same_pixels(tmp_path: Path) -> None:
    image = _photo((90, 60))
    path = tmp_path / "a.png"
    image.save(path)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    array = np.array(image)
    sources = [path, str(path), buffer.getvalue(), image, array, torch.from_numpy(array).permute(2, 0, 1)]
    results = [load_pixels(s, CFG) for s in sources]
    assert all(torch.equal(r.pixels, results[0].pixels) and r.size == (90, 60) for r in results)
    with pytest.raises(ImageDecodeError, match="not a recognised image format"):
        load_pixels(b"not an image", CFG)
