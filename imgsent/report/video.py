"""The report's video section: per video or animation, a filmstrip of its sampled frames and P(positive) over time.

Frames are found from the frame rows (``<file>#t=<seconds>``, written by ``imgsent classify
--frame-rows``) and decoded again at their times with :func:`imgsent.video.frames_at`, so the
strip shows exactly the frames that were classified. A video without frame rows is listed with
its aggregate and a note on how to get them.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from imgsent.results import ResultRow
from imgsent.video_outputs import split_frame_path

MAX_VIDEOS = 200
"""Videos shown at most in the section; the page says how many there are."""
PLOT_WIDTH, PLOT_HEIGHT = 320, 90


def video_section(rows: Sequence[ResultRow], frame_rows: Sequence[ResultRow], root: Path, *,
                  size: int = 96, workers: int | None = None) -> dict[str, Any]:
    """The template data of the video section: one entry per video or animation row (``frames`` set).

    Args:
        rows: The file rows of the results (frame rows excluded).
        frame_rows: The frame rows (``time`` set).
        root: Folder that relative paths are resolved against.
        size: Longest side of a frame thumbnail in pixels.
        workers: Threads decoding the frames.

    Returns:
        ``{"videos": [...], "total": n, "frame_rows": m}``; each video holds its row, its frames
        (time, label, P(positive), thumbnail URI) and the points of its plot.
    """
    by_file: dict[str, list[ResultRow]] = {}
    for frame in frame_rows:
        by_file.setdefault(split_frame_path(frame.path)[0], []).append(frame)
    media = [row for row in rows if row.frames is not None or row.path in by_file]
    shown = media[:MAX_VIDEOS]
    with ThreadPoolExecutor(max_workers=max(1, workers or 4)) as pool:
        videos = list(pool.map(lambda row: _video(row, by_file.get(row.path, []), root, size), shown))
    return {"videos": videos, "total": len(media), "frame_rows": len(frame_rows)}


def _video(row: ResultRow, frames: list[ResultRow], root: Path, size: int) -> dict[str, Any]:
    frames = sorted(frames, key=lambda f: f.time or 0.0)
    uris = _thumbnails(str(root / row.path), [f.time or 0.0 for f in frames], size)
    strip = [{"row": f, "time": f.time or 0.0, "positive": f.probabilities[2] if f.probabilities else None,
              "uri": uris.get(round(f.time or 0.0, 3))} for f in frames]
    return {"row": row, "strip": strip, "plot": _plot([(s["time"], s["positive"]) for s in strip])}


def _thumbnails(path: str, times: list[float], size: int) -> dict[float, str]:
    """JPEG data URIs of the frames at ``times``, keyed by time rounded to ms; empty if unreadable."""
    from imgsent.errors import ImgsentError
    from imgsent.video import frames_at

    if not times:
        return {}
    try:
        decoded = frames_at(path, times)
    except (ImgsentError, OSError):
        return {}
    out: dict[float, str] = {}
    for target, frame in zip(sorted(set(times)), decoded):
        image = frame.image.convert("RGB")
        image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
        out[round(target, 3)] = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return out


def _plot(points: list[tuple[float, float | None]]) -> dict[str, Any]:
    """SVG coordinates of P(positive) over time: x spans the sampled times, y runs 0 (bottom) to 1 (top)."""
    known = [(t, p) for t, p in points if p is not None]
    if not known:
        return {"points": "", "dots": [], "end": 0.0}
    end = max(t for t, _ in known) or 1.0
    dots = [{"x": round(10 + (PLOT_WIDTH - 20) * t / end, 1), "y": round(5 + (PLOT_HEIGHT - 20) * (1 - p), 1),
             "time": t, "p": p} for t, p in known]
    return {"points": " ".join(f"{d['x']},{d['y']}" for d in dots), "dots": dots, "end": end}
