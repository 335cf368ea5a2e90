"""Join the part files of a sharded classify run into one output: the library side of ``imgsent merge``.

Parts may be CSV or JSONL (told apart by extension) and the output either. A path classified in
two parts, or (given the input listing) a file no part classified or a row for a file that is not
in the listing, stops the merge with a typed error that names the paths and the fix; nothing is
written then. With the listing, rows come out in listing order, so merging the parts of a
sharded run gives the same file as one unsharded run.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgsent.errors import MergeError
from imgsent.outputs import COLUMNS, OutputFormat, infer_format
from imgsent.scan import iter_image_files
from imgsent.video_outputs import split_frame_path

_NUMERIC = frozenset({"negative", "neutral", "positive", "confidence", "time"})
_SHOWN = 5


@dataclass
class MergeSummary:
    """What :func:`merge_parts` wrote.

    Attributes:
        rows: Rows written.
        errors: Rows that carry an error instead of a label.
        parts: Rows read from each part file, in the order given.
        torn: Part files whose last line was cut off (a killed write); that row was left out.
    """

    rows: int = 0
    errors: int = 0
    parts: dict[str, int] = field(default_factory=dict)
    torn: list[str] = field(default_factory=list)


def merge_parts(
    output: str | os.PathLike[str],
    parts: Sequence[str | os.PathLike[str]],
    *,
    inputs: Iterable[str | os.PathLike[str]] | None = None,
    recursive: bool = False,
    fmt: OutputFormat | None = None,
) -> MergeSummary:
    """Join part files into ``output``, checking that every path appears once.

    Args:
        output: The merged file (``.csv`` or ``.jsonl``); it must not be one of ``parts``.
        parts: Part files written by ``imgsent classify --shard`` or under ``torchrun``.
        inputs: The files and folders the run classified, scanned exactly as ``classify`` does.
            When given, every input file must have exactly one row and no row may name another
            file, and rows are written in listing order. ``None`` checks duplicates only and
            keeps the parts' order.
        recursive: Scan ``inputs`` folders recursively (as ``classify --recursive``).
        fmt: Output format; ``None`` infers it from the extension.

    Returns:
        A :class:`MergeSummary`.

    Raises:
        MergeError: A path appears twice; an input has no row; a row names a file outside
            ``inputs``; a part is unreadable; or ``output`` is also a part.

    Example:
        >>> summary = merge_parts("all.csv", ["out.part-00000-of-00002.csv", "out.part-00001-of-00002.csv"],
        ...                       inputs=["photos/"])  # doctest: +SKIP
        >>> summary.rows, summary.parts  # doctest: +SKIP
        (1520, {'out.part-00000-of-00002.csv': 771, 'out.part-00001-of-00002.csv': 749})
    """
    if not parts:
        raise MergeError("No part files given: pass the files written by each shard, e.g. out.part-*.csv.")
    target = Path(output)
    if any(_same_file(target, Path(part)) for part in parts):
        raise MergeError(f"The output {str(target)!r} is also a part file; write the merge to a new file.")
    summary = MergeSummary()
    rows: dict[str, dict[str, Any]] = {}
    columns: list[str] = list(COLUMNS)
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    for part in parts:
        part_rows, part_columns, torn = _read_part(Path(part))
        summary.parts[str(part)] = len(part_rows)
        if torn:
            summary.torn.append(str(part))
        columns += [c for c in part_columns if c not in columns]
        for row in part_rows:
            path = row["path"]
            if path in seen:
                duplicates.append(f"{path} (in {seen[path]} and {part})")
                continue
            seen[path] = str(part)
            rows[path] = row
    if duplicates:
        raise MergeError(
            f"{len(duplicates)} path(s) appear more than once: {_first(duplicates)}. Parts overlap when they "
            "come from different --shard N, different input folders, or a shard run twice without --resume.",
            duplicates=[d.split(" (in ")[0] for d in duplicates],
        )
    order = list(rows)
    if inputs is not None:
        listing = list(dict.fromkeys(iter_image_files(list(inputs), recursive=recursive)))
        known = set(listing)
        missing = [p for p in listing if p not in rows]
        frame_rows = _frame_rows(rows, known)
        unexpected = [p for p in rows if p not in known and split_frame_path(p)[0] not in known]
        if missing or unexpected:
            problems = []
            if missing:
                problems.append(
                    f"{len(missing)} input file(s) have no row: {_first(missing)} (rerun their shard with --resume)"
                )
            if unexpected:
                problems.append(
                    f"{len(unexpected)} row(s) name files outside the inputs: {_first(unexpected)} (check --inputs "
                    "and --recursive match the classify run, with the same folder spelling)"
                )
            raise MergeError("; ".join(problems) + ".", missing=missing, unexpected=unexpected)
        order = [q for p in listing for q in (*frame_rows.get(p, ()), p)]  # a file's frames, then the file
    _write(target, infer_format(target, fmt), columns, (rows[p] for p in order))
    summary.rows = len(order)
    summary.errors = sum(1 for p in order if rows[p].get("error") not in (None, ""))
    return summary


def _frame_rows(rows: Iterable[str], known: set[str]) -> dict[str, list[str]]:
    """The frame rows (``<file>#t=<seconds>``) of each listed file, in time order."""
    found: dict[str, list[tuple[float, str]]] = {}
    for path in rows:
        file, time = split_frame_path(path)
        if time is not None and file in known:
            found.setdefault(file, []).append((time, path))
    return {file: [p for _, p in sorted(items)] for file, items in found.items()}


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _first(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _read_part(path: Path) -> tuple[list[dict[str, Any]], list[str], bool]:
    """Rows (values typed as in JSONL), the columns, and whether a torn last line was dropped."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MergeError(f"Cannot read part file {str(path)!r}: {exc.strerror or exc}.") from None
    end = data.rfind(b"\n") + 1
    torn = end != len(data)
    text = data[:end].decode("utf-8", errors="surrogateescape")
    if infer_format(path, None) == "jsonl":
        rows = []
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise MergeError(f"{str(path)!r} line {number} is not JSON: {line[:80]!r}.") from None
            if not isinstance(row, dict) or not isinstance(row.get("path"), str):
                raise MergeError(f"{str(path)!r} line {number} has no 'path': {line[:80]!r}.")
            rows.append(row)
        return rows, [c for row in rows[:1] for c in row], torn
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None and not text:
        return [], [], torn
    if reader.fieldnames is None or "path" not in reader.fieldnames:
        raise MergeError(f"{str(path)!r} is not a classify CSV: its header {reader.fieldnames} has no 'path' column.")
    return [_typed(row) for row in reader], list(reader.fieldnames), torn


def _typed(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value == "" or value is None:
            out[key] = None
        elif key in _NUMERIC:
            out[key] = float(value)
        elif key == "frames":
            out[key] = int(float(value))
        else:
            out[key] = value
    return out


def _write(target: Path, fmt: OutputFormat, columns: list[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write to a temporary file and rename, so a failed merge never leaves a half file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    with open(temporary, "w", encoding="utf-8", newline="", errors="surrogateescape") as stream:
        if fmt == "csv":
            writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
        else:
            for row in rows:
                stream.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False) + "\n")
    os.replace(temporary, target)


__all__ = ["MergeError", "MergeSummary", "merge_parts"]
