"""Generate a zoo of real image files (good, odd and broken) for tests and reliability docs.

:func:`make_zoo` writes one file per case into a folder and returns a manifest of
:class:`ZooRecord`; :func:`make_path_oddities` adds links, loops, a FIFO, a
directory named like an image and an unreadable file. Everything is generated
from code in well under a second, deterministically, with no network.

Run ``python tests/image_zoo.py OUTDIR`` to write the zoo and print its manifest.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, features

__all__ = ["DISPLAY_SIZE", "QUADRANTS", "ZooRecord", "make_path_oddities", "make_zoo"]

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
DISPLAY_SIZE = (40, 60)
"""(width, height) every EXIF-orientation file shows once its orientation is applied."""
QUADRANTS = {"top_left": RED, "top_right": GREEN, "bottom_left": BLUE, "bottom_right": WHITE}
"""Colour of each quadrant of an EXIF-orientation file, as displayed (asymmetric on purpose)."""
MID16 = 128 * 257  # a 16-bit value that must come out as 8-bit 128

# EXIF orientation -> transpose that turns the displayed picture into the stored one
# (the inverse of what ImageOps.exif_transpose applies).
_STORE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@dataclass(frozen=True)
class ZooRecord:
    """One zoo entry.

    Attributes:
        filename: Path relative to the zoo folder.
        kind: Short machine-friendly description, e.g. ``"mode_I;16_png"``.
        expect: ``"ok"`` if a robust loader must decode it, ``"error"`` if it must refuse it.
        size: Expected ``(width, height)`` after decoding, when known.
        corner: Expected RGB of the top-left pixel after decoding, when pinned.
        note: Free-text remark (e.g. why an expectation differs on this machine).
    """

    filename: str
    kind: str
    expect: Literal["ok", "error"]
    size: tuple[int, int] | None = None
    corner: tuple[int, int, int] | None = None
    note: str = ""


def _gradient(width: int, height: int) -> Image.Image:
    """A smooth colourful RGB test picture."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    rgb = np.stack([x, y, 255 - (x + y) / 2], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    """Incompressible RGB noise (keeps the encoded file large enough to truncate)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _half_transparent(width: int, height: int) -> Image.Image:
    """RGBA gradient whose left quarter is fully transparent (must decode to white)."""
    rgba = _gradient(width, height).convert("RGBA")
    alpha = np.full((height, width), 255, np.uint8)
    alpha[:, : width // 4] = 0
    alpha[:, width // 4 : width // 2] = 128
    rgba.putalpha(Image.fromarray(alpha))
    return rgba


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png(width: int, height: int, bit_depth: int, color_type: int, rows: bytes | None) -> bytes:
    """Hand-made PNG; ``rows`` is raw filtered scanlines (``None``: no IDAT at all)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
    if rows is not None:
        out += _png_chunk(b"IDAT", zlib.compress(rows, 9))
    return out + _png_chunk(b"IEND", b"")


def _rgb48_png(width: int, height: int) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one) with a pinned corner."""
    arr = np.zeros((height, width, 3), dtype=">u2")
    arr[..., 0] = np.linspace(0, 65535, width, dtype=np.float64).astype(np.uint16)[None, :]
    arr[..., 1] = MID16
    arr[:4, :4] = (65535, MID16, 0)
    rows = b"".join(b"\x00" + arr[r].tobytes() for r in range(height))
    return _png(width, height, 16, 2, rows)


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    """Encode an image to bytes."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _mode_cases(w: int, h: int) -> list[tuple[str, str, bytes, tuple[int, int, int] | None]]:
    """(filename, kind, data, corner) for every PIL mode a file format can hold."""
    rgb = _gradient(w, h)
    rgba = _half_transparent(w, h)
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    pal_t = pal.copy()
    pal_t.info["transparency"] = pal.getpixel((0, 0))
    gray16 = np.linspace(0, 65535, w * h, dtype=np.float64).reshape(h, w).astype(np.uint16)
    gray16[:4, :4] = MID16
    i16 = Image.fromarray(gray16)  # mode I;16
    i16b = Image.frombytes("I;16B", (w, h), gray16.astype(">u2").tobytes())  # convert() would clip
    i32 = Image.fromarray(gray16.astype(np.int32))  # mode I, 16-bit range
    f32 = Image.fromarray(gray16.astype(np.float32) / 65535.0)  # mode F in [0, 1]
    mid = (128, 128, 128)
    white = WHITE
    cases: list[tuple[str, str, bytes, tuple[int, int, int] | None]] = [
        ("mode_1.png", "mode_1_png", _encode(rgb.convert("1"), "PNG"), None),
        ("mode_1.bmp", "mode_1_bmp", _encode(rgb.convert("1"), "BMP"), None),
        ("mode_1.tif", "mode_1_tiff", _encode(rgb.convert("1"), "TIFF"), None),
        ("mode_L.png", "mode_L_png", _encode(rgb.convert("L"), "PNG"), None),
        ("mode_L.jpg", "mode_L_jpeg", _encode(rgb.convert("L"), "JPEG"), None),
        ("mode_P.png", "mode_P_png", _encode(pal, "PNG"), None),
        ("mode_P.gif", "mode_P_gif", _encode(pal, "GIF"), None),
        ("mode_P.bmp", "mode_P_bmp", _encode(pal, "BMP"), None),
        ("mode_P_transparent.png", "mode_P_transparency_png", _encode(pal_t, "PNG"), white),
        ("mode_P_transparent.gif", "mode_P_transparency_gif", _encode(pal_t, "GIF"), white),
        ("mode_LA.png", "mode_LA_png", _encode(rgba.convert("LA"), "PNG"), white),
        ("mode_LA.tif", "mode_LA_tiff", _encode(rgba.convert("LA"), "TIFF"), white),
        ("mode_PA.tif", "mode_PA_tiff", _encode(rgba.convert("PA"), "TIFF"), white),
        ("mode_RGBA.png", "mode_RGBA_png", _encode(rgba, "PNG"), white),
        ("mode_RGBA.webp", "mode_RGBA_webp", _encode(rgba, "WEBP", lossless=True), white),
        ("mode_RGBA.tif", "mode_RGBA_tiff", _encode(rgba, "TIFF"), white),
        ("mode_CMYK.jpg", "mode_CMYK_jpeg", _encode(rgb.convert("CMYK"), "JPEG"), None),
        ("mode_CMYK.tif", "mode_CMYK_tiff", _encode(rgb.convert("CMYK"), "TIFF"), None),
        ("mode_YCbCr.tif", "mode_YCbCr_tiff", _encode(rgb.convert("YCbCr"), "TIFF"), None),
        ("mode_LAB.tif", "mode_LAB_tiff", _encode(rgb.convert("LAB"), "TIFF"), None),
        ("mode_I.tif", "mode_I_tiff", _encode(i32, "TIFF"), mid),
        ("mode_I16.png", "mode_I;16_png", _encode(i16, "PNG"), mid),
        ("mode_I16.tif", "mode_I;16_tiff", _encode(i16, "TIFF"), mid),
        ("mode_I16B.tif", "mode_I;16B_tiff", _encode(i16b, "TIFF"), mid),
        ("mode_F.tif", "mode_F_tiff", _encode(f32, "TIFF"), mid),
        ("rgb48.png", "rgb_16bit_png", _rgb48_png(w, h), (255, 128, 0)),
        ("rgb.jpg", "rgb_jpeg", _encode(rgb, "JPEG", quality=90), None),
        (
            "rgb_progressive.jpg",
            "rgb_jpeg_progressive",
            _encode(rgb, "JPEG", progressive=True),
            None,
        ),
        ("rgb.png", "rgb_png", _encode(rgb, "PNG"), None),
        ("rgb_lossy.webp", "rgb_webp_lossy", _encode(rgb, "WEBP", quality=80), None),
        ("rgb.bmp", "rgb_bmp", _encode(rgb, "BMP"), None),
        ("rgb.tif", "rgb_tiff", _encode(rgb, "TIFF", compression="tiff_lzw"), None),
        ("rgb.ppm", "rgb_ppm", _encode(rgb, "PPM"), None),
        ("rgb.tga", "rgb_tga", _encode(rgb, "TGA"), None),
        ("rgb.gif", "rgb_gif", _encode(rgb, "GIF"), None),
        ("rgb.pcx", "rgb_pcx", _encode(rgb, "PCX"), None),
        ("rgb.qoi", "rgb_qoi", _encode(rgb, "QOI"), None),
    ]
    if features.check("jpg_2000"):
        cases.append(("rgb.jp2", "rgb_jpeg2000", _encode(rgb, "JPEG2000"), None))
    if features.check("avif"):
        cases.append(("rgb.avif", "rgb_avif", _encode(rgb, "AVIF"), None))
    return cases


def _animation_cases(w: int, h: int) -> list[tuple[str, str, bytes]]:
    """Animated and multi-frame files whose first frame is solid red."""

    def frames(fmt: str, **params: object) -> bytes:
        # Fresh frames per format: some encoders leave settings on the image they save.
        red, *rest = (Image.new("RGB", (w, h), c) for c in (RED, GREEN, BLUE))
        return _encode(red, fmt, save_all=True, append_images=rest, **params)

    anim = {"duration": 100, "loop": 0}
    return [
        ("animated.gif", "animated_gif", frames("GIF", **anim)),
        ("animated.webp", "animated_webp", frames("WEBP", lossless=True, **anim)),
        ("animated.png", "animated_png", frames("PNG", **anim)),
        ("multi_picture.mpo", "mpo_jpeg", frames("MPO")),
        ("multipage.tif", "multipage_tiff", frames("TIFF")),
    ]


def _oriented(orientation: int, fmt: str) -> bytes:
    """A file whose stored pixels need EXIF ``orientation`` to show the QUADRANTS picture."""
    w, h = DISPLAY_SIZE
    shown = Image.new("RGB", DISPLAY_SIZE, WHITE)
    shown.paste(RED, (0, 0, w // 2, h // 2))
    shown.paste(GREEN, (w // 2, 0, w, h // 2))
    shown.paste(BLUE, (0, h // 2, w // 2, h))
    method = _STORE[orientation]
    stored = shown if method is None else shown.transpose(method)
    exif = Image.Exif()
    exif[0x0112] = orientation
    params: dict[str, object] = {"quality": 95} if fmt == "JPEG" else {}
    return _encode(stored, fmt, exif=exif.tobytes(), **params)


def make_zoo(folder: str | os.PathLike[str]) -> list[ZooRecord]:
    """Write the zoo of image files into ``folder`` and return its manifest.

    Args:
        folder: Target directory (created if missing).

    Returns:
        One :class:`ZooRecord` per file written, ``expect="ok"`` first.

    Example:
        >>> records = make_zoo(tmp_path)  # doctest: +SKIP
        >>> sum(r.expect == "error" for r in records)  # doctest: +SKIP
        12
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    records: list[ZooRecord] = []

    def put(name: str, kind: str, data: bytes, expect: Literal["ok", "error"], **extra: object) -> None:
        (root / name).write_bytes(data)
        records.append(ZooRecord(name, kind, expect, **extra))  # type: ignore[arg-type]

    w, h = 32, 24
    for name, kind, data, corner in _mode_cases(w, h):
        put(name, kind, data, "ok", size=(w, h), corner=corner)
    for name, kind, data in _animation_cases(w, h):
        put(name, kind, data, "ok", size=(w, h), corner=RED, note="first frame is red")
    for orientation in range(1, 9):
        put(
            f"exif_orientation_{orientation}.jpg",
            f"exif_orientation_{orientation}_jpeg",
            _oriented(orientation, "JPEG"),
            "ok",
            size=DISPLAY_SIZE,
            corner=RED,
        )
    put(
        "exif_orientation_6.png",
        "exif_orientation_6_png",
        _oriented(6, "PNG"),
        "ok",
        size=DISPLAY_SIZE,
        corner=RED,
    )

    small = _encode(_gradient(w, h), "JPEG", quality=90)
    put(
        "tiny_1x1.png",
        "size_1x1",
        _encode(Image.new("RGB", (1, 1), RED), "PNG"),
        "ok",
        size=(1, 1),
        corner=RED,
    )
    put("tall_1x2000.png", "size_1x2000", _encode(_gradient(1, 2000), "PNG"), "ok", size=(1, 2000))
    put("wide_2000x1.png", "size_2000x1", _encode(_gradient(2000, 1), "PNG"), "ok", size=(2000, 1))
    put(
        "large_3000x2000.jpg",
        "size_large_allowed",
        _encode(_gradient(3000, 2000), "JPEG", quality=80),
        "ok",
        size=(3000, 2000),
        note="6 MP, well under the default limit",
    )
    put("png_named.jpg", "wrong_extension", _encode(_gradient(w, h), "PNG"), "ok", size=(w, h))
    for name in ("café_über.jpg", "日本語の写真.jpg", "😀 smile 🎉.jpg", "UPPER.JPG"):
        put(name, "unicode_or_case_name", small, "ok", size=(w, h))
    put("Mixed.PnG", "unicode_or_case_name", _encode(_gradient(w, h), "PNG"), "ok", size=(w, h))

    noisy_jpeg = _encode(_noise(64, 64), "JPEG", quality=95)
    noisy_png = _encode(_noise(64, 64), "PNG")
    put(
        "bomb_60000x60000.png",
        "decompression_bomb",
        _png(60000, 60000, 8, 0, b"\x00" * 60001),
        "error",
        note="3.6 GP claimed by a ~200-byte file; above Pillow's own hard limit",
    )
    put(
        "bomb_10000x10000.png",
        "over_max_pixels",
        _png(10000, 10000, 8, 0, b"\x00" * 10001),
        "error",
        note="100 MP: above DEFAULT_MAX_PIXELS, below Pillow's hard limit",
    )
    put("truncated.jpg", "truncated_jpeg", noisy_jpeg[: len(noisy_jpeg) // 2], "error")
    put("truncated.png", "truncated_png", noisy_png[: len(noisy_png) // 2], "error")
    put(
        "header_only.png",
        "png_header_only",
        _png(w, h, 8, 2, None),
        "error",
        note="signature, IHDR and IEND; no pixel data",
    )
    put(
        "header_only.jpg",
        "jpeg_header_only",
        small[: small.index(b"\xff\xda")],
        "error",
        note="every JPEG marker up to (not including) the scan data",
    )
    put("empty.jpg", "empty_file", b"", "error")
    put("random.jpg", "random_bytes", np.random.default_rng(0).bytes(4096), "error")
    put("notes.jpg", "text_file", b"These are my holiday notes, not a picture.\n" * 20, "error")
    put(
        "eps_named.png",
        "postscript",
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
        "error",
    )
    return records


def make_path_oddities(folder: str | os.PathLike[str]) -> list[ZooRecord]:
    """Create filesystem oddities in ``folder`` and return their manifest.

    Creates a real image, a symlink to it, two symlinks pointing at each other,
    a broken link, a directory cycle, a directory named ``dir.jpg``, a FIFO, a
    ``chmod 000`` file and names a missing file. Cases the platform cannot create
    (no symlinks or FIFOs) are left out. When the current user can still read the
    ``chmod 000`` file (root), its record says ``expect="ok"`` with a note.

    Args:
        folder: Target directory (created if missing).

    Returns:
        One :class:`ZooRecord` per path.

    Example:
        >>> [r.kind for r in make_path_oddities(tmp_path)][:2]  # doctest: +SKIP
        ['real_file', 'symlink_to_image']
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    size = (32, 24)
    data = _encode(_gradient(*size), "JPEG", quality=90)
    (root / "real.jpg").write_bytes(data)
    records = [ZooRecord("real.jpg", "real_file", "ok", size=size)]

    def link(name: str, target: str, kind: str, expect: Literal["ok", "error"], **kw: object) -> None:
        try:
            os.symlink(target, root / name, target_is_directory=kind == "directory_cycle")
        except (OSError, NotImplementedError):
            return
        records.append(ZooRecord(name, kind, expect, **kw))  # type: ignore[arg-type]

    link("link_to_real.jpg", "real.jpg", "symlink_to_image", "ok", size=size)
    link("loop_a.jpg", "loop_b.jpg", "symlink_loop", "error")
    link("loop_b.jpg", "loop_a.jpg", "symlink_loop", "error")
    link("broken_link.jpg", "does_not_exist.jpg", "broken_symlink", "error")
    (root / "cycle").mkdir(exist_ok=True)
    (root / "cycle" / "inside.jpg").write_bytes(data)
    records.append(ZooRecord("cycle/inside.jpg", "file_in_directory_cycle", "ok", size=size))
    link("cycle/again", ".", "directory_cycle", "error", note="cycle/again -> . (a directory)")
    (root / "dir.jpg").mkdir(exist_ok=True)
    records.append(ZooRecord("dir.jpg", "directory_named_like_image", "error"))
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "fifo.jpg")
        records.append(ZooRecord("fifo.jpg", "fifo", "error", note="must fail fast, not block"))
    records.append(ZooRecord("missing.jpg", "missing_file", "error", note="never created"))

    locked = root / "unreadable.jpg"
    locked.write_bytes(data)
    locked.chmod(0)
    try:
        with open(locked, "rb"):
            readable = True
    except PermissionError:
        readable = False
    if readable:
        note = "chmod 000 does not stop reads for this user (root or admin); it decodes"
        records.append(ZooRecord("unreadable.jpg", "unreadable_file", "ok", size=size, note=note))
    else:
        records.append(ZooRecord("unreadable.jpg", "unreadable_file", "error"))
    return records


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/image_zoo.py OUTDIR")
    manifest = make_zoo(sys.argv[1]) + make_path_oddities(Path(sys.argv[1]) / "paths")
    print(json.dumps([asdict(r) for r in manifest], ensure_ascii=False, indent=1))
