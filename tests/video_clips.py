"""Tiny videos and animations for tests, made with PyAV and Pillow from the repo's example photos."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PHOTOS = ["coffee_cup.jpg", "chelsea_the_cat.jpg", "hubble_extreme_deep_field.jpg", "falcon9_dscovr_launch.jpg"]


def photo(name: str, size: tuple[int, int]) -> np.ndarray:
    """An example photo as an RGB array of ``size`` (width, height)."""
    return np.asarray(Image.open(REPO / "examples" / "images" / name).convert("RGB").resize(size))


def pan_frames(count: int, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    """``count`` frames panning across the example photos one after another (each frame differs)."""
    strip = np.concatenate([photo(name, (size[0] * 2, size[1])) for name in PHOTOS], axis=1)
    step = (strip.shape[1] - size[0]) / max(1, count - 1)
    return [np.ascontiguousarray(strip[:, round(i * step):round(i * step) + size[0]]) for i in range(count)]


def make_clip(path: Path, *, count: int = 48, fps: int = 24, size: tuple[int, int] = (64, 48),
              codec: str = "libx264", gop: int | None = None, fmt: str | None = None) -> Path:
    """Encode a pan over the example photos; returns ``path``."""
    import av

    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        for array in pan_frames(count, size):
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_all(path: Path) -> list[tuple[float, np.ndarray]]:
    """Every frame of a video, decoded in order the naive way: (time, RGB array)."""
    import av

    with av.open(str(path)) as container:
        return [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def make_gif(path: Path, durations: list[int], size: tuple[int, int] = (40, 30)) -> Path:
    """An animated GIF cycling through the example photos, one frame per entry of ``durations`` (ms)."""
    frames = [Image.fromarray(photo(PHOTOS[i % len(PHOTOS)], size)) for i in range(len(durations))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return path


def make_audio_only(path: Path) -> Path:
    """An MP4 holding one AAC audio stream and no video."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_no_frames(path: Path, codec: str = "mpeg4") -> Path:
    """A container with a video stream header and no frames."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


def patch_avi(source: Path, target: Path, *, size: tuple[int, int] | None = None, fourcc: bytes | None = None) -> Path:
    """Copy an AVI, rewriting the frame size its headers claim and/or its codec's FourCC."""
    data = bytearray(source.read_bytes())
    if size is not None:
        strf = data.find(b"strf")
        struct.pack_into("<ii", data, strf + 12, *size)  # BITMAPINFOHEADER biWidth, biHeight
        avih = data.find(b"avih")
        struct.pack_into("<II", data, avih + 8 + 32, *size)  # MainAVIHeader dwWidth, dwHeight
    if fourcc is not None:
        strh = data.find(b"strh")
        old = bytes(data[strh + 12:strh + 16])
        data = bytearray(bytes(data).replace(old, fourcc))
    target.write_bytes(bytes(data))
    return target
