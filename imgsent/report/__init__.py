"""``imgsent report``: one self-contained HTML page that shows a classify run.

The page holds a summary (counts per label, model, date, errors), a histogram of confidence
per label, a thumbnail grid per label sorted by confidence, and the error rows. Thumbnails
are small JPEGs embedded as base64, so the file opens offline in any browser. Large runs are
sampled evenly along the confidence ranking (the most and least certain images are always
shown), and the page says how many of how many it shows.

The page is rendered by Jinja2 with autoescaping on: every path, label and error message is
untrusted text and is escaped.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgsent.errors import InvalidConfigError, require_extra
from imgsent.report.results import SHOWN_LABELS, ResultRow, describe_model, read_report_input, read_results

__all__ = ["ReportSummary", "build_report", "read_results", "write_report"]
_BINS = 20


@dataclass(frozen=True)
class ReportSummary:
    """What :func:`write_report` wrote.

    Attributes:
        output: The HTML file.
        rows: Rows in the results file.
        shown: Thumbnails in the page (after sampling).
        errors: Error rows.
        bytes: Size of the HTML file.
        seconds: Wall time.
    """

    output: Path
    rows: int
    shown: int
    errors: int
    bytes: int
    seconds: float


def write_report(
    results: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    model: str | None = None,
    images_root: str | os.PathLike[str] | None = None,
    max_per_label: int = 400,
    thumbnail_size: int = 128,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReportSummary:
    """Write the HTML report of a classify results file.

    Args:
        results: CSV or JSONL written by ``imgsent classify``.
        output: The HTML file to write.
        model: Model to show in the summary. Default: the model, revision and engine recorded
            in the results file's sidecar (``<results>.imgsent.json``).
        images_root: Folder that relative image paths are resolved against. Default: the
            current directory, as for the classify run that wrote them.
        max_per_label: Thumbnails shown per label at most; larger labels are sampled evenly
            along their confidence ranking. Default 400.
        thumbnail_size: Longest side of a thumbnail in pixels. Default 128.
        workers: Threads that make thumbnails. Default: CPU count + 1, at most 8.
        on_progress: Called with (thumbnails done, total).

    Returns:
        A :class:`ReportSummary`.

    Raises:
        InputNotFoundError: ``results`` does not exist.
        ResultsFileError: ``results`` is not a classify output.
        MissingExtraError: Jinja2 is not installed (``pip install 'imgsent[report]'``).

    Example:
        >>> summary = write_report("out.csv", "report.html")  # doctest: +SKIP
        >>> summary.rows, summary.shown, summary.errors  # doctest: +SKIP
        (750, 750, 0)
    """
    start = time.perf_counter()
    if max_per_label < 1:
        raise InvalidConfigError(f"max_per_label must be >= 1, got {max_per_label}.")
    if not 16 <= thumbnail_size <= 1024:
        raise InvalidConfigError(f"thumbnail_size must be in [16, 1024], got {thumbnail_size}.")
    read = read_report_input(results)
    everything = read.rows
    html = build_report(
        everything, model=model or describe_model(read.record), source=str(results), images_root=images_root,
        max_per_label=max_per_label,
        thumbnail_size=thumbnail_size, workers=workers, on_progress=on_progress,
    )
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html, encoding="utf-8", errors="surrogateescape")
    rows = [row for row in everything if row.time is None]  # frame rows are not files
    shown = sum(min(n, max_per_label) for n in Counter(r.label for r in rows if r.label is not None).values())
    errors = sum(r.label is None for r in rows)
    return ReportSummary(output, len(rows), shown, errors, output.stat().st_size, time.perf_counter() - start)


def build_report(
    rows: Sequence[ResultRow],
    *,
    model: str | None = None,
    source: str = "",
    images_root: str | os.PathLike[str] | None = None,
    max_per_label: int = 400,
    thumbnail_size: int = 128,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> str:
    """Render the report page for ``rows`` and return its HTML (arguments as in :func:`write_report`)."""
    require_extra("jinja2", "report")
    import jinja2

    from imgsent.report.thumbnails import make_thumbnails
    from imgsent.report.video import video_section

    root = Path(images_root) if images_root is not None else Path.cwd()
    frame_rows = [row for row in rows if row.time is not None]  # --frame-rows: shown in the video section
    rows = [row for row in rows if row.time is None]
    by_label: dict[str, list[ResultRow]] = {label: [] for label in SHOWN_LABELS}
    for row in rows:
        if row.label is not None:
            by_label[row.label].append(row)
    sections = []
    for label, members in by_label.items():
        if not members:
            continue
        ranked = sorted(members, key=lambda r: (-(r.confidence or 0.0), r.path))
        sections.append({"label": label, "total": len(ranked), "rows": sample_evenly(ranked, max_per_label),
                         "histogram": _histogram([r.confidence or 0.0 for r in ranked])})
    shown = [row for section in sections for row in section["rows"]]
    uris = make_thumbnails([str(root / row.path) for row in shown], size=thumbnail_size, workers=workers,
                           on_progress=on_progress)
    thumbs = iter(uris)
    for section in sections:
        section["thumbs"] = [{"row": row, "uri": next(thumbs)} for row in section["rows"]]
    errors = [row for row in rows if row.label is None]
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("imgsent.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = lambda value: f"{100 * value:.1f}%"
    env.filters["basename"] = lambda value: str(value).replace("\\", "/").rsplit("/", 1)[-1]
    return env.get_template("report.html.j2").render(
        model=model or "not recorded in the results file",
        source=source,
        created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        total=len(rows),
        counts={s["label"]: s["total"] for s in sections},
        sections=sections,
        shown=len(shown),
        errors=errors[:1000],
        error_count=len(errors),
        thumbnail_size=thumbnail_size,
        bins=_BINS,
        version=_version(),
        video=video_section(rows, frame_rows, root, workers=workers),
    )


def sample_evenly(ranked: Sequence[Any], limit: int) -> list[Any]:
    """At most ``limit`` items spread evenly over ``ranked``, keeping its first and last items.

    Example:
        >>> sample_evenly(list(range(10)), 4)
        [0, 3, 6, 9]
    """
    if len(ranked) <= limit:
        return list(ranked)
    if limit == 1:
        return [ranked[0]]
    step = (len(ranked) - 1) / (limit - 1)
    return [ranked[round(i * step)] for i in range(limit)]


def _histogram(values: Sequence[float]) -> dict[str, Any]:
    counts = [0] * _BINS
    for value in values:
        counts[min(_BINS - 1, max(0, int(value * _BINS)))] += 1
    return {"counts": counts, "max": max(counts) or 1}


def _version() -> str:
    import imgsent

    return imgsent.__version__
