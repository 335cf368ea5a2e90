"""Predict videos and animations with a :class:`~imgsent.Predictor`: sampled frames -> one aggregate each.

The frames sampled by :mod:`imgsent.video` are classified by :meth:`imgsent.Predictor.predict`,
the path every photo takes, so a frame gets exactly the probabilities it would get saved as an
image. A file's probabilities are the mean of its frames'; its label and confidence come from
that mean as for a photo (``binary`` and ``min_confidence`` included).

:func:`iter_media_batches` is the streaming form used by ``imgsent classify``: photos go
through the predictor's batched pipeline, while videos are decoded in threads (PyAV and Pillow
release the GIL while decoding) and their frames are classified together in batches.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from imgsent.errors import MissingExtraError, VideoDecodeError
from imgsent.images import describe_source
from imgsent.options import PredictOptions, with_predict_options
from imgsent.outputs import Prediction, labelled
from imgsent.video import DEFAULT_FRAMES, SampledFrame, check_frames, is_media, sample_frames
from imgsent.video_outputs import FramePrediction, VideoPrediction, frame_path


class FramePredictor(Protocol):
    """What video prediction needs of a :class:`~imgsent.Predictor` (named here, so this module never imports it)."""

    device: Any
    backend: str

    def predict(self, images: Any, *, options: PredictOptions | None = None, **overrides: Any) -> list[Prediction]: ...

    def iter_predict_batches(
        self, images: Iterable[Any], *, options: PredictOptions | None = None, **overrides: Any
    ) -> Iterator[list[Prediction]]: ...

__all__ = ["VideoMethods", "iter_in_order", "iter_media_batches", "predict_video"]

_Decoded = tuple[str, "list[SampledFrame] | str"]  # (source, frames or error message)
_NONE = object()


class VideoMethods:
    """The video methods of :class:`~imgsent.Predictor` (kept here, with the rest of video prediction)."""

    @with_predict_options
    def predict_video(
        self, source: str | os.PathLike[str], frames: int = DEFAULT_FRAMES, *,
        options: PredictOptions | None = None, **overrides: Any,
    ) -> VideoPrediction:
        """Predict a video or animated GIF, WebP or PNG from ``frames`` frames sampled uniformly over it.

        Each frame is classified exactly as a photo would be; the file's probabilities are the
        mean of its frames'. Videos need PyAV (``pip install 'imgsent[video]'``).

        Args:
            source: A video (.mp4 .mov .m4v .webm .mkv .avi) or an animated image.
            frames: Frames to sample, at the middles of equal slices of the duration. Default 8;
                an animation with fewer frames gives all of them.
            options: As in :meth:`predict` (the same :class:`~imgsent.options.PredictOptions`).
            **overrides: Any option by name, as in :meth:`predict`; ``batch_size`` counts frames per
                forward pass, ``max_pixels`` refuses larger frames.

        Returns:
            A :class:`~imgsent.VideoPrediction`: the aggregate, with one
            :class:`~imgsent.FramePrediction` (``time``, ``label``, ``probabilities``) per distinct
            sampled frame in ``frame_predictions``. A file that cannot be sampled (missing, truncated,
            no video stream, no frames, too large, a codec that cannot be decoded) has ``error`` set instead.

        Raises:
            InvalidConfigError: ``frames`` is not an int >= 1, or a bad option.

        Example:
            >>> video = predictor.predict_video("clip.mp4", frames=4)  # doctest: +SKIP
            >>> video.label, [(f.time, f.label) for f in video.frame_predictions]  # doctest: +SKIP
            ('positive', [(0.5, 'positive'), (1.5, 'positive'), (2.5, 'neutral'), (3.5, 'positive')])
        """
        return predict_video(self, source, PredictOptions.build(options, **overrides), frames=frames)  # type: ignore[arg-type]


def predict_video(
    predictor: FramePredictor, source: str | os.PathLike[str], options: PredictOptions, *, frames: int = DEFAULT_FRAMES,
) -> VideoPrediction:
    """Classify ``frames`` frames sampled uniformly over a video or animation, and their mean.

    The function behind :meth:`imgsent.Predictor.predict_video`; arguments are as there.
    A file that cannot be sampled gives a :class:`VideoPrediction` with ``error`` set.
    """
    check_frames(frames)
    return _aggregate(predictor, [_decode(describe_source(source), frames, options.max_pixels)], options)[0]


def iter_in_order(
    predictor: FramePredictor, sources: Iterable[Any], options: PredictOptions, *, frames: int = DEFAULT_FRAMES,
) -> Iterator[Prediction]:
    """:meth:`imgsent.Predictor.iter_predict` for inputs that may include videos: one prediction per input, in order.

    Photos and in-memory inputs stream through :meth:`imgsent.Predictor.iter_predict_batches`;
    each video or animation (:func:`imgsent.video.is_media`) gets its :class:`VideoPrediction`
    (the mean of its sampled frames) in its place. ``options`` are those of ``iter_predict``.
    """
    check_frames(frames)
    order: deque[tuple[bool, Any]] = deque()  # (is media, source) for every input pulled so far

    def photos() -> Iterator[Any]:
        for source in sources:
            media = is_media(source)
            order.append((media, source))
            if not media:
                yield source

    def media(source: Any) -> Prediction:
        return _aggregate(predictor, [_decode(describe_source(source), frames, options.max_pixels)], options)[0]

    def ordered() -> Iterator[Prediction]:
        found = (p for batch in predictor.iter_predict_batches(photos(), options=options) for p in batch)
        while True:
            if not order:
                prediction = next(found, None)  # pulls more inputs into ``order``
                if prediction is None and not order:
                    return
            else:
                prediction = next(found) if not order[0][0] else None
            while order and order[0][0]:
                yield media(order.popleft()[1])
            if prediction is not None:
                order.popleft()
                yield prediction

    return ordered()


def iter_media_batches(
    predictor: FramePredictor, sources: Iterable[Any], options: PredictOptions, *,
    frames: int = DEFAULT_FRAMES, frame_rows: bool = False,
) -> Iterator[list[Prediction]]:
    """Stream predictions for photos, videos and animations mixed, batch by batch.

    Photos go through :meth:`imgsent.Predictor.iter_predict_batches` unchanged. Videos and
    animations (:func:`imgsent.video.is_media`) are set aside as the inputs stream past,
    decoded a few at a time in threads, and classified in batches of about ``batch_size``
    frames. Rows therefore come out per batch, not in input order.

    Args:
        predictor: A loaded :class:`~imgsent.Predictor`.
        sources: Paths (or other inputs), consumed lazily.
        options: The run's :class:`~imgsent.options.PredictOptions`; ``workers`` also sets the
            threads that decode videos (``None``: automatic), ``batch_size`` about as many frames
            per forward pass.
        frames: Frames sampled per video or animation. Default 8.
        frame_rows: Also yield one :class:`FramePrediction` per sampled frame, just before its
            file's :class:`VideoPrediction` (so a file's row is written after its frames' rows).

    Yields:
        Lists of predictions: photos' :class:`~imgsent.Prediction`, videos' :class:`VideoPrediction`
        and, with ``frame_rows``, their :class:`FramePrediction` records.
    """
    from imgsent.runtime import default_workers

    check_frames(frames)
    pending: deque[str] = deque()

    def photos() -> Iterator[Any]:
        for source in stream:
            if is_media(source):
                pending.append(describe_source(source))
            else:
                yield source

    stream = iter(sources)
    first = next(photos(), _NONE)  # no photo at all: no decoding processes to start
    images: Iterable[Any] = () if first is _NONE else itertools.chain([first], photos())
    batches = predictor.iter_predict_batches(images, options=options) if images else ()

    workers = options.workers
    threads = max(1, workers if workers is not None else default_workers(predictor.device, predictor.backend))
    running: deque[Future[_Decoded]] = deque()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        def fill() -> None:
            while pending and len(running) < 2 * threads:
                running.append(pool.submit(_decode, pending.popleft(), frames, options.max_pixels))

        def ready(finish: bool) -> Iterator[list[Prediction]]:
            while True:
                fill()
                group: list[_Decoded] = []
                count = 0
                while running and (finish or running[0].done()) and count < options.batch_size:
                    group.append(running.popleft().result())
                    count += len(group[-1][1]) if isinstance(group[-1][1], list) else 0
                    fill()
                if not group:
                    return
                rows: list[Prediction] = []
                for video in _aggregate(predictor, group, options):
                    rows.extend(video.frame_predictions if frame_rows else ())
                    rows.append(video)
                yield rows

        for batch in batches:
            if batch:
                yield batch
            yield from ready(finish=False)
        yield from ready(finish=True)


def _decode(name: str, frames: int, max_pixels: int) -> _Decoded:
    """Sample one file's frames; a failure becomes its error message (never raised)."""
    try:
        return name, sample_frames(name, frames, max_pixels=max_pixels)
    except (VideoDecodeError, MissingExtraError) as exc:
        return name, str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad file is an error row, never a crash
        return name, f"Cannot decode {name!r}: {type(exc).__name__}: {exc}."


def _aggregate(predictor: FramePredictor, decoded: Sequence[_Decoded], options: PredictOptions) -> list[VideoPrediction]:
    """Classify the frames of several files in one pass and average them per file."""
    images = [frame.image for _, found in decoded if isinstance(found, list) for frame in found]
    in_process = dataclasses.replace(options, workers=0)  # the frames are decoded already
    found_predictions = iter(predictor.predict(images, options=in_process) if images else ())
    out: list[VideoPrediction] = []
    for name, found in decoded:
        if isinstance(found, str):
            out.append(VideoPrediction.failed(name, found))
            continue
        rows: list[FramePrediction] = []
        for frame, prediction in zip(found, found_predictions):
            if prediction.ok:
                rows.append(FramePrediction(
                    frame_path(name, frame.time), prediction.label, prediction.negative, prediction.neutral,
                    prediction.positive, confidence=prediction.confidence, time=frame.time,
                ))
        if not rows:
            out.append(VideoPrediction.failed(name, f"Cannot classify {name!r}: none of its frames could be decoded."))
            continue
        mean = tuple(sum(getattr(r, label) for r in rows) / len(rows) for label in ("negative", "neutral", "positive"))
        file = labelled(name, mean, binary=options.binary, min_confidence=options.min_confidence)  # type: ignore[arg-type]
        out.append(VideoPrediction(name, file.label, *mean, confidence=file.confidence, frame_predictions=tuple(rows)))
    return out
