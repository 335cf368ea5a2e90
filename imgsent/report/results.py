"""Read the CSV or JSONL written by ``imgsent classify`` back into rows for the report."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from imgsent.config import LABELS
from imgsent.errors import InputNotFoundError, ResultsFileError

_UNCERTAIN = "uncertain"
SHOWN_LABELS: tuple[str, ...] = (*LABELS, _UNCERTAIN)


@dataclass(frozen=True)
class ResultRow:
    """One row of a results file.

    Attributes:
        path: The image path as written by classify.
        label: A polarity, ``"uncertain"``, or ``None`` for an error row.
        confidence: Probability of the label (of the polarity leaned to, for ``"uncertain"``).
        probabilities: ``(negative, neutral, positive)``, or ``None`` for an error row.
        error: Why the image could not be classified, else ``None``.
        frames: Frames classified, on a video's or animation's row; else ``None``.
        time: Seconds into the file, on a sampled frame's row (path ``<file>#t=<seconds>``); else ``None``.
    """

    path: str
    label: str | None
    confidence: float | None
    probabilities: tuple[float, float, float] | None
    error: str | None
    frames: int | None = None
    time: float | None = None


def read_results(path: str | os.PathLike[str]) -> list[ResultRow]:
    """Read a classify output (CSV or JSONL, chosen from the content); a malformed row becomes an error row.

    Files written before the ``confidence`` column existed are read too: the confidence is then
    the probability of the label.

    Raises:
        InputNotFoundError: The file does not exist.
        ResultsFileError: The file is unreadable, or neither classify CSV nor JSONL.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raise InputNotFoundError(f"Results file not found: {str(path)!r}. Write one with: imgsent classify DIR -o results.csv") from None
    except OSError as exc:
        raise ResultsFileError(f"Cannot read results file {str(path)!r}: {exc}") from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return [_jsonl_row(line, n) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or "path" not in reader.fieldnames or "label" not in reader.fieldnames:
        raise ResultsFileError(
            f"{str(path)!r} is not a classify output: expected a CSV header with 'path' and 'label' "
            f"(got {reader.fieldnames!r}) or JSONL objects."
        )
    return [_row(dict(r), n) for n, r in enumerate(reader, 2)]


def _jsonl_row(line: str, number: int) -> ResultRow:
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return ResultRow(f"(line {number})", None, None, None, "malformed JSON line in the results file")
    if not isinstance(data, dict):
        return ResultRow(f"(line {number})", None, None, None, "results line is not a JSON object")
    return _row(data, number)


def _row(data: dict[str, object], number: int) -> ResultRow:
    path = str(data.get("path") or f"(line {number})")
    error = data.get("error")
    frames, time = _count(data.get("frames")), _seconds(data.get("time"))
    if error not in (None, ""):
        return ResultRow(path, None, None, None, str(error), frames, time)
    label = data.get("label")
    probs = tuple(_number(data.get(name)) for name in LABELS)
    if label not in SHOWN_LABELS or any(p is None for p in probs):
        return ResultRow(path, None, None, None, f"malformed row {number} in the results file (label {label!r})")
    probabilities: tuple[float, float, float] = probs  # type: ignore[assignment]
    confidence = _number(data.get("confidence"))
    if confidence is None:
        confidence = max(probabilities) if label == _UNCERTAIN else probabilities[LABELS.index(str(label))]
    return ResultRow(path, str(label), confidence, probabilities, None, frames, time)


def _count(value: object) -> int | None:
    try:
        return int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


def _seconds(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and 0.0 <= number <= 1.0 else None
