"""Result records of videos and animations: the per-file aggregate and its sampled frames.

A :class:`VideoPrediction` is a :class:`~imgsent.Prediction` (the mean of its frames'
probabilities and the label they give) that also carries its :class:`FramePrediction` records.
Both write the same output row as a photo, with one of the optional columns of
:data:`imgsent.outputs.RESULT_COLUMNS` filled: ``frames`` on the file's row, ``time`` on a frame's
row, whose path is ``<file>#t=<seconds>`` (W3C media-fragment syntax).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imgsent.outputs import Prediction

__all__ = ["FRAGMENT", "FramePrediction", "VideoPrediction", "frame_path", "split_frame_path"]

FRAGMENT = "#t="
"""What separates a file from a frame's time in a frame row's path."""


def frame_path(file: str, time: float) -> str:
    """The path of a frame row: ``<file>#t=<seconds>``, seconds with at most 3 decimals.

    Example:
        >>> frame_path("clips/a.mp4", 1.25), frame_path("b.gif", 2.0)
        ('clips/a.mp4#t=1.25', 'b.gif#t=2')
    """
    seconds = f"{time:.3f}".rstrip("0").rstrip(".")
    return f"{file}{FRAGMENT}{seconds or '0'}"


def split_frame_path(path: str) -> tuple[str, float | None]:
    """The file and time of a frame row's path; ``(path, None)`` for any other row.

    Example:
        >>> split_frame_path("clips/a.mp4#t=1.25"), split_frame_path("photo#1.jpg")
        (('clips/a.mp4', 1.25), ('photo#1.jpg', None))
    """
    file, found, seconds = path.rpartition(FRAGMENT)
    if not found:
        return path, None
    try:
        return file, float(seconds)
    except ValueError:
        return path, None


@dataclass(frozen=True)
class FramePrediction(Prediction):
    """The polarity of one sampled frame of a video or animation.

    Attributes:
        source: ``<file>#t=<seconds>`` (see :func:`frame_path`).
        time: Seconds from the start of the file to the frame (the ``time`` column).

    The other attributes are those of :class:`~imgsent.Prediction`.

    Example:
        >>> frame = FramePrediction("a.mp4#t=0.5", "positive", 0.1, 0.2, 0.7, time=0.5)
        >>> frame.time, frame.label, frame.probabilities["positive"], frame.to_row()["time"]
        (0.5, 'positive', 0.7, 0.5)
    """

    time: float | None = None


@dataclass(frozen=True)
class VideoPrediction(Prediction):
    """The polarity of a video or animation: the mean of its sampled frames' probabilities.

    Attributes:
        frames: How many frames were classified (the ``frames`` column); ``None`` on error.
        frame_predictions: The sampled frames' predictions, in time order; empty on error.

    The other attributes are those of :class:`~imgsent.Prediction`; ``label`` and
    ``confidence`` come from the mean probabilities as for a photo.

    Example:
        >>> frame = FramePrediction("a.gif#t=0", "positive", 0.1, 0.2, 0.7, time=0.0)
        >>> video = VideoPrediction("a.gif", "positive", 0.1, 0.2, 0.7, frame_predictions=(frame,))
        >>> video.frames, video.to_row()["frames"], video.frame_predictions[0].time
        (1, 1, 0.0)
    """

    frames: int | None = None
    frame_predictions: tuple[FramePrediction, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frames is None and self.ok:
            object.__setattr__(self, "frames", len(self.frame_predictions))
