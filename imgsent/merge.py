"""Join the part files of a sharded classify run into one output: the library side of ``imgsent merge``.

Parts may be CSV or JSONL (told apart by their content, read by :func:`imgsent.results.open_results`)
and the output either. A path classified in
two parts, or (given the input listing) a file no part classified or a row for a file that is not
in the listing, stops the merge with a typed error that names the paths and the fix; nothing is
written then. With the listing, rows come out in listing order, so merging the parts of a
sharded run gives the same file as one unsharded run. A sampled frame's row
(``<file>#t=<seconds>``, see :mod:`imgsent.video_outputs`) belongs to its file and comes just
before it; the output has the ``frames`` and ``time`` columns when a part has them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imgsent.errors import InputNotFoundError, MergeError, ResultsFileError
from imgsent.outputs import OutputFormat, ResultWriter, check_writable, infer_format, output_columns
from imgsent.results import Malformed, ResultRow, open_results
from imgsent.resume import check_mode
from imgsent.scan import iter_image_files
from imgsent.video_outputs import split_frame_path

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
    overwrite: bool = False,
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
        overwrite: Replace an ``output`` that already holds rows (otherwise refused, untouched).

    Returns:
        A :class:`MergeSummary`.

    Raises:
        MergeError: A path appears twice; an input has no row; a row names a file outside
            ``inputs``; a part is unreadable; or ``output`` is also a part.
        OutputExistsError: ``output`` already holds rows and ``overwrite`` is False.
        OutputNotWritableError: ``output`` cannot be written (checked before any part is read).

    Example:
        >>> summary = merge_parts("all.csv", ["out.part-00000-of-00002.csv", "out.part-00001-of-00002.csv"],
        ...                       inputs=["photos/"])  # doctest: +SKIP
        >>> summary.rows, summary.parts  # doctest: +SKIP
        (1520, {'out.part-00000-of-00002.csv': 771, 'out.part-00001-of-00002.csv': 749})
    """
    if not parts:
        raise MergeError("No part files given: pass the files written by each shard, e.g. out.part-*.csv.")
    target = check_writable(output, kind="merged file")
    chosen = infer_format(target, fmt)
    if any(_same_file(target, Path(part)) for part in parts):
        raise MergeError(f"The output {str(target)!r} is also a part file; write the merge to a new file.")
    check_mode("overwrite" if overwrite else "new", target,
               fixes="Pass --overwrite to replace it, or write the merge to another file.")
    summary = MergeSummary()
    rows: dict[str, ResultRow] = {}
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    columns: set[str] = set()
    for part in parts:
        part_rows, torn, part_columns = _read_part(Path(part))
        columns.update(part_columns)
        summary.parts[str(part)] = len(part_rows)
        if torn:
            summary.torn.append(str(part))
        for row in part_rows:
            if row.path in seen:
                duplicates.append(f"{row.path} (in {seen[row.path]} and {part})")
                continue
            seen[row.path] = str(part)
            rows[row.path] = row
    if duplicates:
        raise MergeError(
            f"{len(duplicates)} path(s) appear more than once: {_first(duplicates)}. Parts overlap when they "
            "come from different --shard N, different input folders, or a shard run twice without --resume.",
            duplicates=[d.split(" (in ")[0] for d in duplicates],
        )
    order = list(rows)
    if inputs is not None:
        order = _listing_order(rows, inputs, recursive=recursive)
    _write(target, chosen, (rows[p] for p in order), output_columns(frames="frames" in columns, time="time" in columns))
    summary.rows = len(order)
    summary.errors = sum(1 for p in order if not rows[p].ok)
    return summary


def _listing_order(
    rows: dict[str, ResultRow], inputs: Iterable[str | os.PathLike[str]], *, recursive: bool
) -> list[str]:
    """The input listing, checked against the rows: every file has a row and every row a file (a frame row, its file's)."""
    listing = list(dict.fromkeys(iter_image_files(list(inputs), recursive=recursive)))
    known = set(listing)
    missing = [p for p in listing if p not in rows]
    frame_rows = _frame_rows(rows, known)
    unexpected = [p for p in rows if p not in known and split_frame_path(p)[0] not in known]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"{len(missing)} input file(s) have no row: {_first(missing)} (rerun their shard with --resume)")
        if unexpected:
            problems.append(
                f"{len(unexpected)} row(s) name files outside the inputs: {_first(unexpected)} (check --inputs "
                "and --recursive match the classify run, with the same folder spelling)"
            )
        raise MergeError("; ".join(problems) + ".", missing=missing, unexpected=unexpected)
    return [q for p in listing for q in (*frame_rows.get(p, ()), p)]  # a file's frames, then the file


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


def _read_part(path: Path) -> tuple[list[ResultRow], bool, tuple[str, ...]]:
    """A part's rows, whether a torn last line (a killed write) was left out, and its columns."""
    malformed: list[Malformed] = []
    try:
        results = open_results(path)
        rows = results.read_rows(malformed)
    except (InputNotFoundError, ResultsFileError, OSError) as exc:
        raise MergeError(f"Cannot read part file {str(path)!r}: {exc}") from None
    if malformed:
        first = malformed[0]
        raise MergeError(
            f"{str(path)!r} line {first.line} is not a valid row ({first.reason})"
            + (f", and {len(malformed) - 1} more lines" if len(malformed) > 1 else "")
            + ". Fix or remove those lines, or rerun that shard."
        )
    return rows, results.torn > 0, results.columns


def _write(target: Path, fmt: OutputFormat, rows: Iterable[ResultRow], columns: Sequence[str]) -> None:
    """Write to a temporary file and rename, so a failed merge never leaves a half file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    with open(temporary, "w", encoding="utf-8", newline="", errors="surrogateescape") as stream:
        ResultWriter(stream, fmt, write_header=True, columns=columns).write(rows)
    os.replace(temporary, target)


__all__ = ["MergeError", "MergeSummary", "merge_parts"]
