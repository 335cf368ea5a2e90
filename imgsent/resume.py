"""What a results file may become in this run: created, continued (``--resume``) or replaced (``--overwrite``).

An existing results file is never replaced by accident. A run in mode ``"new"`` refuses a
non-empty output; ``"resume"`` continues it, skipping the paths it holds, and refuses to append
rows that would mean something else (another format, or another model, revision, dtype, engine,
protocol, ``min_confidence``, ``frames`` or ``frame_rows``, as recorded in its :class:`~imgsent.results.RunRecord`) unless
forced; ``"overwrite"`` replaces it. The file itself is read by :func:`imgsent.results.open_results`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from imgsent.errors import InvalidConfigError, OutputExistsError, ResultsFileError, ResumeMismatchError
from imgsent.outputs import OutputFormat
from imgsent.results import SIDECAR_SUFFIX, RunRecord, open_results, sidecar_path, write_record

OutputMode = Literal["new", "resume", "overwrite"]
MODES: tuple[OutputMode, ...] = ("new", "resume", "overwrite")


@dataclass(frozen=True)
class ResumeState:
    """What an existing output file holds.

    Attributes:
        rows: Complete rows in the file.
        done: Normalised paths of those rows (see :func:`path_key`).
        record: The file's :class:`~imgsent.results.RunRecord`, or ``None`` when it has no sidecar.
        torn: Bytes of a torn last line, cut off before appending.
        columns: The file's columns (its CSV header; appended CSV rows must fit it).
    """

    rows: int = 0
    done: frozenset[str] = frozenset()
    record: RunRecord | None = None
    torn: int = 0
    columns: tuple[str, ...] = ()


def path_key(path: str, cwd: str) -> str:
    """Normalise a path for resume matching: absolute (against ``cwd``), ``..`` and ``//`` folded."""
    return os.path.normcase(os.path.normpath(os.path.join(cwd, path)))


def check_mode(
    mode: str, output: str | os.PathLike[str] | None, *,
    fixes: str = "Pass --resume to continue it, --overwrite to replace it, or write to another --output.",
) -> OutputMode:
    """Validate ``mode`` and, for ``"new"``, refuse an ``output`` that already holds results.

    ``fixes`` ends the refusal: the options that the calling command offers.

    Raises:
        InvalidConfigError: ``mode`` is not new, resume or overwrite, or it is resume or
            overwrite without an output file.
        OutputExistsError: ``mode`` is ``"new"`` and ``output`` is a non-empty file.
    """
    if mode not in MODES:
        raise InvalidConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    if output is None:
        if mode != "new":
            raise InvalidConfigError(f"mode={mode!r} needs an output file: it reads or replaces the rows written there.")
        return mode
    path = Path(output)
    if mode == "new" and path.is_file() and path.stat().st_size > 0:
        raise OutputExistsError(
            f"{path} already holds results ({_lines(path)} lines); nothing was changed. {fixes}"
        )
    return mode  # type: ignore[return-value]


def _lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def read_resume_state(output: str | os.PathLike[str], fmt: OutputFormat) -> ResumeState:
    """Read what ``output`` already holds, without changing it.

    A torn last line (a killed write) is not a row; :func:`imgsent.torn_lines.cut_torn_line`
    cuts it before appending.

    Raises:
        ResumeMismatchError: The file holds another format than ``fmt``, or an unrecognised
            one, or its sidecar is invalid.

    Example:
        >>> state = read_resume_state("out.csv", "csv")  # doctest: +SKIP
        >>> state.rows, state.record.model  # doctest: +SKIP
        (480, 'default')
    """
    try:
        results = open_results(output, missing_ok=True)
    except ResultsFileError:
        raise ResumeMismatchError(
            f"{output} holds rows in an unrecognised format, not classify CSV or JSONL. Nothing was changed; "
            "write to another --output."
        ) from None
    if results.format is None:
        return ResumeState()
    if results.record_problem:
        raise ResumeMismatchError(
            f"{results.record_problem}. Delete it to resume without the setup check, or write to another --output."
        )
    record = results.record
    if results.format != fmt or (record is not None and record.format != fmt):
        found = results.format
        raise ResumeMismatchError(
            f"{output} holds {found.upper()} rows, but this run writes {fmt.upper()}. Nothing was changed; "
            f"resume with --format {found}, or write to another --output."
        )
    cwd = record.cwd if record is not None else os.getcwd()
    done = [path_key(row.path, cwd) for row in results.iter_rows()]
    return ResumeState(rows=len(done), done=frozenset(done), record=record, torn=results.torn, columns=results.columns)


def check_record(existing: RunRecord | None, current: RunRecord, *, output: str | os.PathLike[str], force: bool) -> None:
    """Refuse to append rows made differently from those already in ``output``, unless ``force``.

    Raises:
        ResumeMismatchError: Model, revision, dtype, engine, protocol, ``min_confidence``, ``frames`` or ``frame_rows``
            differ and ``force`` is false. The message names each difference and the options
            that match the file.
    """
    if existing is None or force:
        return
    diffs = existing.differences(current)
    if diffs:
        fixes = " and ".join(_fix(name, getattr(existing, name), existing) for name in RunRecord.CHECKED
                         if any(d.startswith(f"{name}:") for d in diffs))
        raise ResumeMismatchError(
            f"{output} was written by another setup, and its rows would mean something else: " + "; ".join(diffs)
            + f". Nothing was changed. Rerun with {fixes} to match the file, write to another --output, "
            "or pass --force to mix them."
        )


def check_options(
    existing: RunRecord | None, *, binary: bool, min_confidence: float, output: str | os.PathLike[str], force: bool,
    frames: int | None = None, frame_rows: bool | None = None,
) -> None:
    """The part of :func:`check_record` known before a model is loaded: ``binary``, ``min_confidence``,
    and (when given) ``frames`` and ``frame_rows``.

    Raises:
        ResumeMismatchError: As :func:`check_record`, for these settings.
    """
    if existing is not None:
        videos = {name: value for name, value in (("frames", frames), ("frame_rows", frame_rows)) if value is not None}
        current = dataclasses.replace(existing, binary=binary, min_confidence=float(min_confidence), **videos)
        check_record(existing, current, output=output, force=force)


def _fix(name: str, value: Any, record: RunRecord) -> str:
    """The option that gives this run the file's value of one setting."""
    if name == "model":
        return "no --model" if value == "default" else f"--model {value}"
    if name == "revision":
        return f"imgsent {record.imgsent_version}" if record.model == "default" else f"--revision {value}"
    if name in ("binary", "frame_rows"):
        flag = "--" + name.replace("_", "-")
        return flag if value else f"no {flag}"
    option = {"engine": "--backend", "min_confidence": "--min-confidence"}.get(name, f"--{name}")
    return f"{option} {value}"


__all__ = [
    "MODES",
    "SIDECAR_SUFFIX",
    "OutputMode",
    "ResumeState",
    "RunRecord",
    "check_mode",
    "check_options",
    "check_record",
    "path_key",
    "read_resume_state",
    "sidecar_path",
    "write_record",
]
