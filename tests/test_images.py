"""Tests for imgsent.images: decoding every kind of input into an RGB PIL image."""

from __future__ import annotations

import gc
import io
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgsent.errors import ImageDecodeError, ImgsentError, InvalidConfigError
from imgsent.images import DEFAULT_MAX_PIXELS, describe_source, load_image

sys.path.insert(0, str(Path(__file__).parent))
import contextlib

from image_zoo import DISPLAY_SIZE, QUADRANTS, ZooRecord, make_path_oddities, make_zoo

Zoo = tuple[Path, list[ZooRecord]]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Zoo:
    folder = tmp_path_factory.mktemp("zoo")
    return folder, make_zoo(folder)


@pytest.fixture(scope="module")
def oddities(tmp_path_factory: pytest.TempPathFactory) -> Zoo:
    folder = tmp_path_factory.mktemp("paths")
    return folder, make_path_oddities(folder)


def _record(zoo: Zoo, kind: str) -> Path:
    folder, records = zoo
    return Path(folder, next(r.filename for r in records if r.kind == kind))


def _close(pixel: object, expected: tuple[int, ...], tol: int = 40) -> bool:
    assert isinstance(pixel, tuple), pixel
    return bool(max(abs(x - y) for x, y in zip(pixel, expected, strict=True)) <= tol)


def _check(folder: Path, record: ZooRecord) -> str | None:
    """Load one zoo entry; return a failure description or None."""
    try:
        image = load_image(folder / record.filename)
    except ImageDecodeError as exc:
        if record.expect == "ok":
            return f"{record.filename}: unexpected error {exc}"
        if record.filename.split("/")[-1] not in str(exc):
            return f"{record.filename}: message does not name the file: {exc}"
        return None
    except Exception as exc:  # anything else is a crash
        return f"{record.filename}: crashed with {type(exc).__name__}: {exc}"
    if record.expect == "error":
        return f"{record.filename}: decoded but should have been refused"
    if image.mode != "RGB":
        return f"{record.filename}: mode {image.mode}"
    if record.size is not None and image.size != record.size:
        return f"{record.filename}: size {image.size} != {record.size}"
    if record.corner is not None and not _close(image.getpixel((0, 0)), record.corner):
        return f"{record.filename}: corner {image.getpixel((0, 0))} != {record.corner}"
    return None


def test_zoo_manifest_covers_good_and_bad_files(zoo: Zoo) -> None:
    folder, records = zoo
    assert sum(r.expect == "ok" for r in records) >= 50
    assert sum(r.expect == "error" for r in records) >= 10
    assert all((folder / r.filename).exists() for r in records)


def test_every_zoo_file_decodes_or_is_refused_quickly(zoo: Zoo) -> None:
    folder, records = zoo
    start = time.perf_counter()
    failures = [f for r in records if (f := _check(folder, r)) is not None]
    elapsed = time.perf_counter() - start
    assert failures == []
    assert elapsed < 5.0, f"zoo took {elapsed:.1f}s to decode"


def test_path_oddities_never_crash_or_block(oddities: Zoo) -> None:
    folder, records = oddities
    failures: list[str] = []
    worker = threading.Thread(
        target=lambda: failures.extend(f for r in records if (f := _check(folder, r)) is not None),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "load_image blocked on a path oddity (FIFO?)"
    assert failures == []


def test_unreadable_file_record_is_honest(oddities: Zoo) -> None:
    folder, records = oddities
    record = next(r for r in records if r.kind == "unreadable_file")
    if record.expect == "ok":
        assert "root" in record.note
        assert load_image(folder / record.filename).size == record.size
    else:
        with pytest.raises(ImageDecodeError, match="permission denied"):
            load_image(folder / record.filename)


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        ("empty_file", r"empty\.jpg'.*the file is empty \(0 bytes\)"),
        ("random_bytes", r"random\.jpg'.*not a recognised image format \(starts with b'"),
        ("text_file", r"not a recognised image format \(starts with b'These are my'\)"),
        ("truncated_jpeg", r"truncated\.jpg'.*truncated image data"),
        ("truncated_png", r"truncated\.png'.*truncated image data"),
        ("png_header_only", r"header_only\.png'.*corrupt or unsupported image data"),
        ("decompression_bomb", r"refused as a possible decompression bomb"),
        ("over_max_pixels", r"10000x10000 = 100000000 pixels is above max_pixels=89478485"),
        ("postscript", r"EPS/PostScript needs Ghostscript"),
    ],
)
def test_broken_files_have_pinned_messages(zoo: Zoo, kind: str, pattern: str) -> None:
    with pytest.raises(ImageDecodeError, match=pattern):
        load_image(_record(zoo, kind))


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("missing.jpg", r"missing\.jpg': no such file"),
        ("dir.jpg", r"dir\.jpg': it is a directory"),
        ("broken_link.jpg", r"broken_link\.jpg': broken symbolic link"),
        ("loop_a.jpg", r"loop_a\.jpg': Too many levels of symbolic links"),
        ("fifo.jpg", r"fifo\.jpg': not a regular file"),
    ],
)
def test_path_errors_have_pinned_messages(oddities: Zoo, name: str, pattern: str) -> None:
    folder, records = oddities
    if name not in {r.filename for r in records}:
        pytest.skip(f"{name} cannot be created on this platform")
    with pytest.raises(ImageDecodeError, match=pattern):
        load_image(folder / name)


def test_image_decode_error_is_a_value_error(zoo: Zoo) -> None:
    with pytest.raises(ValueError):
        load_image(_record(zoo, "empty_file"))
    assert issubclass(ImageDecodeError, ImgsentError)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(zoo: Zoo, orientation: int) -> None:
    image = load_image(_record(zoo, f"exif_orientation_{orientation}_jpeg"))
    assert image.size == DISPLAY_SIZE
    w, h = DISPLAY_SIZE
    centres = {
        "top_left": (w // 4, h // 4),
        "top_right": (3 * w // 4, h // 4),
        "bottom_left": (w // 4, 3 * h // 4),
        "bottom_right": (3 * w // 4, 3 * h // 4),
    }
    for quadrant, xy in centres.items():
        assert _close(image.getpixel(xy), QUADRANTS[quadrant]), (orientation, quadrant)


def test_exif_orientation_applies_to_pil_input_without_mutating_it(zoo: Zoo) -> None:
    with Image.open(_record(zoo, "exif_orientation_6_jpeg")) as opened:
        image = load_image(opened)
        assert opened.size == (DISPLAY_SIZE[1], DISPLAY_SIZE[0])
    assert image.size == DISPLAY_SIZE
    assert _close(image.getpixel((5, 5)), QUADRANTS["top_left"])


@pytest.mark.parametrize(
    "kind", ["animated_gif", "animated_webp", "animated_png", "mpo_jpeg", "multipage_tiff"]
)
def test_first_frame_of_animations(zoo: Zoo, kind: str) -> None:
    image = load_image(_record(zoo, kind))
    assert _close(image.getpixel((10, 10)), (255, 0, 0), tol=8)


def test_max_pixels_is_checked_before_decoding(zoo: Zoo) -> None:
    large = _record(zoo, "size_large_allowed")
    assert load_image(large).size == (3000, 2000)
    with pytest.raises(ImageDecodeError, match=r"3000x2000 = 6000000 pixels is above max_pixels=1000000"):
        load_image(large, max_pixels=1_000_000)
    with pytest.raises(ImageDecodeError, match="above max_pixels=10"):
        load_image(np.zeros((4, 4, 3), np.uint8), max_pixels=10)
    assert DEFAULT_MAX_PIXELS == 89_478_485


def test_bomb_refusal_leaves_pillow_settings_and_warnings_alone(zoo: Zoo) -> None:
    before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for kind in ("over_max_pixels", "decompression_bomb"):
            with pytest.raises(ImageDecodeError):
                load_image(_record(zoo, kind))
    assert before == Image.MAX_IMAGE_PIXELS
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_draft_size_uses_dct_scaling_for_jpeg(zoo: Zoo) -> None:
    large = _record(zoo, "size_large_allowed")
    assert load_image(large, draft_size=(300, 200)).size == (375, 250)  # 1/8 scale
    assert load_image(large, draft_size=(400, 200)).size == (750, 500)  # both sides >= draft
    rotated = load_image(_record(zoo, "exif_orientation_6_jpeg"), draft_size=(10, 15))
    assert rotated.size == (10, 15)  # draft follows the displayed orientation
    assert load_image(_record(zoo, "rgb_png"), draft_size=(4, 4)).size == (32, 24)


def test_decode_image_reports_the_full_displayed_size(zoo: Zoo) -> None:
    from imgsent.images import decode_image

    large = _record(zoo, "size_large_allowed")
    image, size = decode_image(large, draft_size=(300, 200))
    assert image.size == (375, 250) and size == (3000, 2000)  # drafted pixels, full size
    rotated, size = decode_image(_record(zoo, "exif_orientation_6_jpeg"), draft_size=(10, 15))
    assert rotated.size == (10, 15) and size == (40, 60)  # drafted to 1/4; the size is the displayed (rotated) one
    array = np.zeros((4, 6, 3), np.uint8)
    assert decode_image(array)[1] == (6, 4)


@pytest.mark.parametrize("draft", [(0, 10), (10,), "big", (1.5, 2)])
def test_invalid_draft_size(zoo: Zoo, draft: object) -> None:
    with pytest.raises(InvalidConfigError, match="draft_size must be None or"):
        load_image(_record(zoo, "rgb_jpeg"), draft_size=draft)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -5, 1.5, True])
def test_invalid_max_pixels(value: object) -> None:
    with pytest.raises(InvalidConfigError, match="max_pixels must be a positive int"):
        load_image(np.zeros((2, 2), np.uint8), max_pixels=value)  # type: ignore[arg-type]


def test_no_file_handles_left_open(zoo: Zoo) -> None:
    folder, records = zoo
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for record in records:
            with contextlib.suppress(ImageDecodeError):
                load_image(folder / record.filename)
        gc.collect()


def test_bytes_inputs_match_path(zoo: Zoo) -> None:
    path = _record(zoo, "rgb_jpeg")
    data = path.read_bytes()
    expected = np.asarray(load_image(path))
    for source in (data, bytearray(data), memoryview(data)):
        assert np.array_equal(np.asarray(load_image(source)), expected)
    assert np.array_equal(np.asarray(load_image(str(path))), expected)


@pytest.mark.parametrize(
    ("source", "pattern"),
    [
        (b"", r"<bytes: 0 B>: the data is empty"),
        (b"GIF89a", r"<bytes: 6 B>"),
        (42, r"from <int>: expected a path, bytes, PIL.Image.Image, numpy.ndarray or torch.Tensor"),
        ([[0, 1]], r"from <list>"),
        ("", r"the path is empty"),
        ("https://example.com/cat.jpg", r"URLs are not fetched; download the file first"),
    ],
)
def test_unusable_values(source: object, pattern: str) -> None:
    with pytest.raises(ImageDecodeError, match=pattern):
        load_image(source)  # type: ignore[arg-type]


def _pil_in_mode(mode: str) -> Image.Image:
    base = Image.new("RGB", (6, 4), (200, 30, 40))
    if mode.startswith("I;16"):
        return Image.frombytes(mode, (6, 4), bytes(48))
    if mode in ("PA", "La", "RGBa"):
        return base.convert("RGBA" if mode != "PA" else "P").convert(mode)
    return base.convert(mode)


@pytest.mark.parametrize(
    "mode",
    [
        "1",
        "L",
        "P",
        "LA",
        "PA",
        "La",
        "RGB",
        "RGBA",
        "RGBa",
        "CMYK",
        "YCbCr",
        "LAB",
        "HSV",
        "I",
        "I;16",
        "I;16B",
        "I;16L",
        "I;16N",
        "F",
    ],
)
def test_every_pil_mode_becomes_a_new_rgb_image(mode: str) -> None:
    source = _pil_in_mode(mode)
    image = load_image(source)
    assert image.mode == "RGB" and image.size == (6, 4)
    assert image is not source and source.mode == mode


def test_alpha_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert load_image(rgba).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(np.zeros((4, 4, 4), np.uint8)).getpixel((0, 0)) == (255, 255, 255)


def test_high_bit_depth_modes_scale_sensibly() -> None:
    assert load_image(Image.fromarray(np.full((2, 2), 128 * 257, np.uint16))).getpixel((0, 0)) == (128,) * 3
    as_int = Image.fromarray(np.array([[0, 100], [200, 255]], np.int32))  # fits 0-255: kept
    assert load_image(as_int).getpixel((1, 0)) == (100,) * 3
    as_float = Image.fromarray(np.array([[0.0, 0.5]], np.float32))  # fits 0-1: * 255
    assert load_image(as_float).getpixel((1, 0)) == (128,) * 3
    wide = Image.fromarray(np.array([[-1000.0, 1000.0]], np.float32))  # min-max stretched
    assert [load_image(wide).getpixel((x, 0)) for x in (0, 1)] == [(0,) * 3, (255,) * 3]


def test_arrays() -> None:
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(load_image(hwc)), hwc)
    assert np.array_equal(np.asarray(load_image(hwc.astype(np.float64) / 255)), hwc)
    assert np.array_equal(np.asarray(load_image(hwc[:, ::-1])), hwc[:, ::-1])  # non-contiguous
    gray = hwc[..., 0]
    for source in (gray, gray[..., None], gray.astype(np.float32) / 255):
        out = np.asarray(load_image(source))
        assert out.shape == (5, 7, 3) and np.array_equal(out[..., 1], gray)
    assert load_image(np.ones((2, 2, 3), np.float16)).getpixel((0, 0)) == (255,) * 3


def test_tensors_follow_torchvision_layout() -> None:
    rng = np.random.default_rng(1)
    hwc = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    chw = torch.from_numpy(hwc).permute(2, 0, 1)
    assert np.array_equal(np.asarray(load_image(chw)), hwc)
    as_float = (chw.float() / 255).requires_grad_()
    assert np.array_equal(np.asarray(load_image(as_float)), hwc)
    assert np.abs(np.asarray(load_image(chw.to(torch.bfloat16) / 255), np.int16) - hwc).max() <= 2
    gray = chw[0]
    assert np.array_equal(np.asarray(load_image(gray))[..., 0], hwc[..., 0])
    assert np.array_equal(np.asarray(load_image(gray[None]))[..., 0], hwc[..., 0])
    assert load_image(torch.zeros(4, 2, 2, dtype=torch.uint8)).getpixel((0, 0)) == (255,) * 3


@pytest.mark.parametrize(
    ("source", "pattern"),
    [
        (np.zeros((3, 8, 9), np.uint8), r"looks CxHxW; use array\.transpose\(1, 2, 0\)"),
        (np.zeros((8, 9, 2), np.uint8), r"expected 1, 3 or 4 channels \(HxWxC or HxW\), got 2"),
        (np.zeros((2, 8, 9, 3), np.uint8), r"batch of 2 images; pass one image at a time"),
        (np.zeros(5, np.uint8), r"expected HxWxC or HxW dimensions, got 1"),
        (np.zeros((0, 4, 3), np.uint8), r"the image has no pixels"),
        (np.zeros((4, 4), np.uint16), r"dtype must be uint8, or float .* got uint16"),
        (np.zeros((4, 4), bool), r"got bool"),
        (
            np.full((4, 4), 255.0),
            r"float values must lie in \[0, 1\], got min=255, max=255; .*divide by 255",
        ),
        (np.full((4, 4), -2.0), r"min=-2, .*undo the normalisation"),
        (np.full((4, 4), np.nan), r"NaN or infinite"),
        (torch.zeros(8, 9, 3), r"looks HxWxC; use tensor\.permute\(2, 0, 1\)"),
        (torch.zeros(2, 3, 8, 9), r"batch of 2 images; pass one image at a time \(CxHxW or HxW\)"),
        (torch.zeros(3, 4, 4, dtype=torch.int64), r"dtype must be torch\.uint8"),
        (
            torch.full((3, 4, 4), 2.0),
            r"<Tensor float32 \(3, 4, 4\)>: float values must lie in \[0, 1\]",
        ),
    ],
)
def test_bad_arrays_and_tensors(source: object, pattern: str) -> None:
    with pytest.raises(ImageDecodeError, match=pattern):
        load_image(source)  # type: ignore[arg-type]


def test_describe_source(zoo: Zoo) -> None:
    path = _record(zoo, "rgb_jpeg")
    assert describe_source(path) == str(path)
    assert describe_source("photos/cat.jpg") == "photos/cat.jpg"
    assert describe_source(b"x" * 1234) == "<bytes: 1234 B>"
    assert describe_source(bytearray(3)) == "<bytearray: 3 B>"
    assert describe_source(memoryview(bytes(10))) == "<memoryview: 10 B>"
    assert describe_source(Image.new("RGB", (640, 480))) == "<PIL.Image RGB 640x480>"
    assert describe_source(np.zeros((480, 640, 3), np.uint8)) == "<ndarray uint8 (480, 640, 3)>"
    assert describe_source(torch.zeros(3, 224, 224)) == "<Tensor float32 (3, 224, 224)>"
    assert describe_source(None) == "<NoneType>"
    assert describe_source(io.BytesIO()) == "<BytesIO>"
