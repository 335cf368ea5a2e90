"""Sample frames from videos and animations: probe, choose times uniformly, decode only those frames.

Videos (:data:`imgsent.scan.VIDEO_EXTENSIONS`) are read with PyAV (``pip install 'imgsent[video]'``),
which seeks to the keyframe before each sampled time and decodes forward to it, so a long clip
costs a few keyframe intervals per sample, not the whole stream. Animated GIF, WebP and PNG files
are read with Pillow, whose frames depend on the previous ones, so they are walked in order.

Every frame comes out as a PIL image and is turned into model pixels by the same path as a
photo (:func:`imgsent.images.load_image` and :func:`imgsent.transforms.preprocess`, through
:meth:`imgsent.Predictor.predict`). A file that cannot be sampled raises
:class:`~imgsent.errors.VideoDecodeError` naming the file and the reason; nothing blocks:

* frames larger than ``max_pixels`` are refused from the stream header, before decoding;
* at most :data:`MAX_DECODED_FRAMES` frames are decoded per file (a stream with no keyframes
  to seek to would otherwise be decoded whole, once per sample).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image

from imgsent.errors import InvalidConfigError, VideoDecodeError, require_extra
from imgsent.images import DEFAULT_MAX_PIXELS
from imgsent.scan import has_video_extension

__all__ = ["DEFAULT_FRAMES", "MAX_DECODED_FRAMES", "SampledFrame", "check_frames", "frames_at", "is_media", "may_hold_media", "sample_frames",
           "sample_times"]

DEFAULT_FRAMES = 8
"""Frames sampled per video or animation unless told otherwise."""
MAX_DECODED_FRAMES = 30_000
"""Most frames decoded for one file, seeks included; a file needing more is refused."""
ANIMATION_EXTENSIONS: frozenset[str] = frozenset({".gif", ".webp", ".png", ".apng"})
_NAMED_ANIMATIONS = frozenset({".gif", ".apng"})
_MIN_GIF_DELAY_MS = 20  # browsers show shorter GIF delays as 100 ms
_DEFAULT_DELAY_MS = 100


@dataclass(frozen=True)
class SampledFrame:
    """One decoded frame: its presentation ``time`` in seconds from the start, and its pixels."""

    time: float
    image: Image.Image


def check_frames(frames: int) -> int:
    """Validate a number of frames to sample (an int >= 1).

    Raises:
        InvalidConfigError: ``frames`` is not a positive int.
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise InvalidConfigError(f"frames must be an int >= 1, got {frames!r}. Example: frames=8")
    return frames


def is_media(source: object) -> bool:
    """True when ``source`` is a path to a video, or to an animated GIF, WebP or PNG (several frames).

    Videos are told by their extension; animations by opening the file's header with Pillow.
    Anything else (a still image, bytes, an array, a missing file) is False.

    Example:
        >>> is_media("clip.MP4"), is_media("examples/images/coffee_cup.jpg")
        (True, False)
    """
    if not isinstance(source, (str, os.PathLike)):
        return False
    name = os.fsdecode(os.fspath(source))
    if has_video_extension(name):
        return True
    if os.path.splitext(name)[1].lower() not in ANIMATION_EXTENSIONS:
        return False
    try:
        with Image.open(name) as image:
            return bool(getattr(image, "is_animated", False))
    except Exception:  # noqa: BLE001 - unreadable files are reported by the image path
        return False


def may_hold_media(paths: Iterable[str]) -> bool:
    """True when a path has a video extension, or ``.gif`` or ``.apng``; names only, nothing is opened.

    This decides whether an output gets the ``frames`` column before any file is read. PNG and
    WebP files are not counted: nearly all are stills, and photo folders keep their columns.

    Example:
        >>> may_hold_media(["a.jpg", "b.mov"]), may_hold_media(["a.jpg", "b.png"])
        (True, False)
    """
    return any(has_video_extension(p) or os.path.splitext(p)[1].lower() in _NAMED_ANIMATIONS for p in paths)


def sample_times(duration: float, frames: int, *, start: float = 0.0) -> list[float]:
    """``frames`` times spread uniformly over ``duration``: the middle of each of ``frames`` equal slices.

    Example:
        >>> sample_times(8.0, 4)
        [1.0, 3.0, 5.0, 7.0]
    """
    return [start + (i + 0.5) * duration / frames for i in range(frames)]


def sample_frames(path: str | os.PathLike[str], frames: int = DEFAULT_FRAMES, *,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> list[SampledFrame]:
    """Decode ``frames`` frames spread uniformly over a video or animation (all of them when it has fewer).

    Args:
        path: A video file, or an animated GIF, WebP or PNG.
        frames: Frames to sample. Default 8.
        max_pixels: Refuse frames with more pixels than this (the limit for images).

    Returns:
        Distinct frames in time order (two sample times that fall on one frame give it once).

    Raises:
        VideoDecodeError: The file is missing, truncated or corrupt, has no video stream or no
            frames, claims frames larger than ``max_pixels``, or uses a codec that cannot be decoded.
        MissingExtraError: A video needs PyAV (``pip install 'imgsent[video]'``).

    Example:
        >>> [round(f.time, 2) for f in sample_frames("clip.mp4", 4)]  # doctest: +SKIP
        [0.25, 0.75, 1.25, 1.75]
    """
    return _sample(path, check_frames(frames), None, max_pixels)


def frames_at(path: str | os.PathLike[str], times: Iterable[float], *,
              max_pixels: int = DEFAULT_MAX_PIXELS) -> list[SampledFrame]:
    """Decode the frames shown at ``times`` (seconds), e.g. those of a results file's frame rows.

    Arguments, errors and the returned frames are as for :func:`sample_frames`.

    Example:
        >>> [f.time for f in frames_at("clip.mp4", [0.25, 1.75])]  # doctest: +SKIP
        [0.25, 1.75]
    """
    wanted = sorted(set(times))
    if not wanted:
        return []
    return _sample(path, len(wanted), wanted, max_pixels)


def _sample(path: str | os.PathLike[str], frames: int, times: list[float] | None, max_pixels: int) -> list[SampledFrame]:
    name = os.fsdecode(os.fspath(path))
    if not os.path.isfile(name):
        raise VideoDecodeError(f"Cannot open video {name!r}: no such file.")
    if has_video_extension(name):
        return _sample_video(name, frames, times, max_pixels)
    return _sample_animation(name, frames, times, max_pixels)


def _check_size(name: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise VideoDecodeError(
            f"Cannot decode {name!r}: its frames are {width}x{height} ({width * height} pixels), more than "
            f"max_pixels={max_pixels}. Pass a larger max_pixels if the file is trusted."
        )


def _sample_animation(name: str, frames: int, times: list[float] | None, max_pixels: int) -> list[SampledFrame]:
    try:
        with Image.open(name) as image:
            _check_size(name, image.width, image.height, max_pixels)
            count = getattr(image, "n_frames", 1)
            if count > MAX_DECODED_FRAMES:  # each frame is drawn over the previous one: all are decoded
                raise VideoDecodeError(
                    f"Cannot sample {name!r}: it has {count} frames, more than the {MAX_DECODED_FRAMES} that may be "
                    "decoded for one file. Convert it to a video, which can be sampled by seeking."
                )
            starts, clock = [], 0.0
            for index in range(count):
                image.seek(index)
                starts.append(clock)
                delay = image.info.get("duration") or _DEFAULT_DELAY_MS
                clock += (_DEFAULT_DELAY_MS if delay < _MIN_GIF_DELAY_MS else delay) / 1000
            if times is not None:
                chosen = sorted({_frame_at(starts, t + 1e-6) for t in times})
            elif count <= frames:
                chosen = list(range(count))
            else:
                chosen = sorted({_frame_at(starts, t) for t in sample_times(clock, frames)})
            out = []
            for index in chosen:
                image.seek(index)
                out.append(SampledFrame(round(starts[index], 6), image.copy()))
            return out
    except VideoDecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on corrupt files
        raise VideoDecodeError(f"Cannot decode animation {name!r}: {type(exc).__name__}: {exc}.") from None


def _frame_at(starts: list[float], t: float) -> int:
    """Index of the frame shown at time ``t``."""
    import bisect

    return max(0, bisect.bisect_right(starts, t) - 1)


def _sample_video(name: str, frames: int, times: list[float] | None, max_pixels: int) -> list[SampledFrame]:
    require_extra("av", "video")
    import av

    sampler = None
    try:
        sampler = _VideoSampler(name, frames, max_pixels)
        return sampler.run(times)
    except VideoDecodeError:
        raise
    except av.error.EOFError:
        raise VideoDecodeError(
            f"Cannot decode video {name!r}: the file ends before its first frame (empty, or truncated)."
        ) from None
    except (av.FFmpegError, OSError, ValueError, RuntimeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise VideoDecodeError(
            f"Cannot decode video {name!r}: FFmpeg says {reason!r} (truncated, corrupt, not a video, or a header "
            "with impossible values). Check the file plays, or re-encode it."
        ) from None
    finally:
        if sampler is not None:
            sampler.container.close()


class _VideoSampler:
    """Seek-and-decode over one open container, counting decoded frames against the budget."""

    def __init__(self, name: str, frames: int, max_pixels: int) -> None:
        import av

        self.av = av
        self.name, self.frames, self.max_pixels = name, frames, max_pixels
        self.container = av.open(name)
        try:
            self._probe(self.container)
        except BaseException:
            self.container.close()
            raise

    def _probe(self, container: Any) -> None:
        """The video stream, its decoder, size, time base, start, duration and frame step."""
        name, max_pixels = self.name, self.max_pixels
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise VideoDecodeError(
                f"Cannot decode {name!r}: it has no video stream (streams: {', '.join(kinds)}): audio only, "
                "or an empty container. Only files with pictures can be classified."
            )
        self.stream = stream = container.streams.video[0]
        codec = stream.codec_context
        if codec is None or not getattr(codec, "is_decoder", True):
            raise VideoDecodeError(f"Cannot decode {name!r}: no decoder for its video codec. Re-encode it, e.g. to H.264.")
        _check_size(name, codec.width, codec.height, max_pixels)
        stream.thread_type = "AUTO"
        self.base = float(stream.time_base) if stream.time_base else 1 / 90000
        self.start = float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0
        if stream.duration and stream.time_base:
            self.duration: float | None = float(stream.duration * stream.time_base)
        elif container.duration:
            self.duration = container.duration / 1_000_000
        else:
            self.duration = None
        rate = stream.average_rate or stream.guessed_rate
        self.step = 1 / float(rate) if rate else 1 / 30
        self.decoded = 0

    def run(self, times: list[float] | None) -> list[SampledFrame]:
        known = self.stream.frames
        if times is not None:
            picked = self._seeking(times)
        elif self.duration is None or (known and known <= self.frames):
            picked = self._sequential()
        else:
            picked = self._seeking(sample_times(self.duration, self.frames, start=self.start))
        if not picked:
            raise VideoDecodeError(f"Cannot decode {self.name!r}: its video stream holds no frames.")
        return picked

    def _frames(self) -> Iterator[Any]:
        for frame in self.container.decode(self.stream):
            self.decoded += 1
            if self.decoded > MAX_DECODED_FRAMES:
                raise VideoDecodeError(
                    f"Cannot sample {self.name!r}: more than {MAX_DECODED_FRAMES} frames would have to be decoded "
                    "(a long stream with no keyframes to seek to). Re-encode it with keyframes, e.g. every 2 s."
                )
            _check_size(self.name, frame.width, frame.height, self.max_pixels)  # the codec may differ from the header
            yield frame

    def _time(self, frame: Any, fallback: float) -> float:
        return float(frame.time) if frame.time is not None else fallback

    def _sequential(self) -> list[SampledFrame]:
        """Decode every frame once (short or unindexed streams), keeping the sampled ones."""
        times: list[float] = []
        for frame in self._frames():
            times.append(self._time(frame, len(times) * self.step))
        if not times:
            return []
        if len(times) <= self.frames:
            wanted = set(range(len(times)))
        else:
            span = times[-1] - times[0] + self.step
            wanted = {_frame_at(times, t) for t in sample_times(span, self.frames, start=times[0])}
        self.container.seek(0)
        out = []
        for index, frame in enumerate(self._frames()):
            if index in wanted:
                out.append(SampledFrame(round(self._time(frame, index * self.step), 6), frame.to_image()))
        return out

    def _seeking(self, targets: list[float]) -> list[SampledFrame]:
        """Seek to the keyframe before each target (unless decoding on is shorter) and decode up to it."""
        out: list[SampledFrame] = []
        decoder: Iterator[Any] | None = None
        position = -1.0  # time of the last decoded frame
        reach = 0.0  # longest distance seen from a seek's keyframe to its target
        for target in targets:
            landed = position if decoder is not None else None
            if decoder is None or target - position > max(reach, 2 * self.step):
                try:
                    self.container.seek(int(target / self.base), stream=self.stream, backward=True, any_frame=False)
                    decoder, landed = self._frames(), None
                except self.av.FFmpegError:  # no index (a truncated Matroska file): decode on from the start
                    if decoder is None:
                        self.container.close()
                        self.container = self.av.open(self.name)
                        self.stream = self.container.streams.video[0]
                        decoder, landed = self._frames(), None
            chosen = None
            for frame in decoder:
                at = self._time(frame, position + self.step)
                landed = at if landed is None else landed
                position = at
                if at >= target - self.step / 2:
                    chosen = SampledFrame(round(at, 6), frame.to_image())
                    break
            if chosen is None:  # the stream ended before the target
                if out and self.duration is not None and target > self.start + self.duration - 2 * self.step:
                    break
                lasts = f"its header says it lasts {self.duration:.3f} s" if self.duration else "no duration known"
                raise VideoDecodeError(
                    f"Cannot decode {self.name!r}: the stream ends before {target:.3f} s, though {lasts} "
                    "(truncated or corrupt). Re-download or re-encode the file."
                )
            reach = max(reach, target - (landed if landed is not None else target))
            if not out or chosen.time > out[-1].time:
                out.append(chosen)
        return out
