"""Run a teacher over a corpus once and keep its outputs in a resumable JSONL cache.

Cache format (UTF-8 JSONL, one object per line)::

    {"format": "imgsent.teacher_cache", "version": 1, "labels": ["negative", "neutral", "positive"],
     "teacher": {"id": "vader", "revision": "..."}}
    {"id": "123", "images": ["/data/images/123.jpg"], "probs": [0.02, 0.08, 0.9]}
    ...

Rows are appended a batch at a time (flushed and fsynced), so an interrupted run resumes
where it stopped: ids already present are skipped, and a torn last line is cut off.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgsent.config import LABELS
from imgsent.distill.corpus import Post
from imgsent.distill.teacher import Teacher
from imgsent.errors import CorpusError, TeacherError
from imgsent.torn_lines import cut_torn_line

CACHE_FORMAT = "imgsent.teacher_cache"
CACHE_VERSION = 1


@dataclass(frozen=True)
class LabeledPost:
    """One row of the teacher cache.

    Attributes:
        id: Post id.
        images: The post's images (the label applies to each).
        probs: Teacher probabilities (negative, neutral, positive).
    """

    id: str
    images: tuple[str, ...]
    probs: tuple[float, float, float]

    @property
    def label(self) -> int:
        """Index of the most probable class (0 negative, 1 neutral, 2 positive)."""
        return max(range(3), key=lambda k: self.probs[k])

    @property
    def confidence(self) -> float:
        """Probability of the most probable class."""
        return max(self.probs)


@dataclass(frozen=True)
class LabelReport:
    """What :func:`label_corpus` did.

    Attributes:
        path: The cache file.
        teacher_id: Teacher id written in the header.
        revision: Teacher revision written in the header.
        cached: Posts found already labelled (skipped).
        labelled: Posts labelled in this run.
        truncated_bytes: Bytes of a torn last line removed before resuming.
    """

    path: str
    teacher_id: str
    revision: str
    cached: int
    labelled: int
    truncated_bytes: int = 0


def label_corpus(
    posts: Iterable[Post],
    teacher: Teacher,
    cache_path: str | Path,
    *,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> LabelReport:
    """Label posts with a teacher, appending to a resumable JSONL cache.

    Args:
        posts: Posts to label (e.g. from :func:`~imgsent.distill.corpus.read_corpus`).
        teacher: Any :class:`Teacher`.
        cache_path: JSONL cache; created if missing, resumed if present.
        batch_size: Texts per ``predict_proba`` call and per durable write. Default 256.
        progress: Called after each batch with the number of posts labelled so far in this run.

    Returns:
        A :class:`LabelReport`.

    Raises:
        TeacherError: The cache was written by another teacher or revision, or the teacher
            returned something other than probabilities of shape ``[N, 3]``.
        CorpusError: The cache is damaged before its last line.

    Example:
        >>> report = label_corpus(read_corpus("corpus.jsonl"), VaderTeacher(), "labels.jsonl")  # doctest: +SKIP
        >>> report.labelled, report.cached  # doctest: +SKIP
        (750, 0)
    """
    if batch_size < 1:
        raise TeacherError(f"batch_size must be >= 1, got {batch_size}.")
    path = Path(cache_path)
    done, truncated = _prepare_cache(path, teacher)
    cached, labelled = len(done), 0
    with open(path, "ab") as out:
        batch: list[Post] = []
        for post in posts:
            if post.id in done:
                continue
            done.add(post.id)
            batch.append(post)
            if len(batch) >= batch_size:
                labelled += _label_batch(batch, teacher, out)
                batch = []
                if progress is not None:
                    progress(labelled)
        if batch:
            labelled += _label_batch(batch, teacher, out)
            if progress is not None:
                progress(labelled)
    return LabelReport(str(path), teacher.id, teacher.revision, cached, labelled, truncated)


def read_cache_header(cache_path: str | Path) -> dict[str, Any]:
    """Return the header of a teacher cache (format, version, labels, teacher id and revision).

    Raises:
        CorpusError: The file is missing or its first line is not a teacher-cache header.
    """
    path = Path(cache_path)
    try:
        with open(path, "rb") as fh:
            first = fh.readline()
    except OSError as exc:
        raise CorpusError(f"Cannot read teacher cache {str(path)!r}: {exc}") from None
    try:
        header = json.loads(first.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != CACHE_FORMAT:
        raise CorpusError(f"{str(path)!r} is not an imgsent teacher cache (no header line); run label_corpus first.")
    if header.get("version") != CACHE_VERSION or header.get("labels") != list(LABELS):
        raise CorpusError(
            f"Teacher cache {str(path)!r} has version {header.get('version')!r} and labels "
            f"{header.get('labels')!r}; expected version {CACHE_VERSION} and {list(LABELS)}."
        )
    return header


def iter_label_cache(cache_path: str | Path) -> Iterator[LabeledPost]:
    """Stream the rows of a teacher cache; a torn last line is ignored.

    Raises:
        CorpusError: The header is missing or a row before the last one is damaged.
    """
    path = Path(cache_path)
    read_cache_header(path)
    with open(path, "rb") as fh:
        fh.readline()
        for number, line in enumerate(fh, start=2):
            row = _parse_row(line) if line.endswith(b"\n") else None
            if row is not None:
                yield row
            elif line.endswith(b"\n"):
                raise CorpusError(f"Teacher cache {str(path)!r} line {number} is damaged; delete the line or the file.")


def _prepare_cache(path: Path, teacher: Teacher) -> tuple[set[str], int]:
    """Write a header or check the existing one; cut a torn tail; return the ids already present."""
    header = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "labels": list(LABELS),
              "teacher": {"id": str(teacher.id), "revision": str(teacher.revision)}}
    size = path.stat().st_size if path.exists() else 0
    if size:
        with open(path, "rb") as fh:
            has_header = fh.readline().endswith(b"\n")
    if not size or not has_header:  # new, empty, or torn inside the header
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            out.write(json.dumps(header, ensure_ascii=False).encode("utf-8") + b"\n")
            out.flush()
            os.fsync(out.fileno())
        return set(), size
    found = read_cache_header(path)["teacher"]
    if found != header["teacher"]:
        raise TeacherError(
            f"Teacher cache {str(path)!r} was written by {found!r}, not {header['teacher']!r}. "
            "Use another cache path for this teacher, or delete the file to relabel."
        )
    removed = cut_torn_line(path, fsync=True)
    done: set[str] = set()
    with open(path, "rb") as fh:
        fh.readline()
        for number, line in enumerate(fh, start=2):
            row = _parse_row(line)
            if row is None:
                raise CorpusError(f"Teacher cache {str(path)!r} line {number} is damaged; delete the line or the file.")
            done.add(row.id)
    return done, removed


def _parse_row(line: bytes) -> LabeledPost | None:
    try:
        row = json.loads(line.decode("utf-8"))
        probs = tuple(float(p) for p in row["probs"])
        images = tuple(str(i) for i in row["images"])
        if not isinstance(row["id"], str) or len(probs) != 3:
            return None
        return LabeledPost(row["id"], images, probs)  # type: ignore[arg-type]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _label_batch(batch: list[Post], teacher: Teacher, out: Any) -> int:
    import numpy as np

    raw = teacher.predict_proba([p.text for p in batch])
    probs = np.asarray(raw.detach().cpu() if hasattr(raw, "detach") else raw, dtype=np.float64)
    if probs.shape != (len(batch), 3) or not np.isfinite(probs).all():
        raise TeacherError(
            f"Teacher {teacher.id!r} returned shape {probs.shape} for {len(batch)} texts; "
            f"expected [{len(batch)}, 3] finite probabilities."
        )
    if (probs < -1e-6).any() or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise TeacherError(f"Teacher {teacher.id!r} returned rows that are not probabilities (negative or not summing to 1).")
    lines = [
        json.dumps({"id": p.id, "images": list(p.images), "probs": [round(float(x), 6) for x in row]},
                   ensure_ascii=False).encode("utf-8") + b"\n"
        for p, row in zip(batch, probs)
    ]
    out.write(b"".join(lines))
    out.flush()
    os.fsync(out.fileno())
    return len(batch)


__all__ = ["CACHE_FORMAT", "LabelReport", "LabeledPost", "iter_label_cache", "label_corpus", "read_cache_header"]
