"""Resume safety for ``imgsent classify`` outputs: what a file already holds, and how it was made.

Every output file gets a small sidecar, ``<output>.imgsent.json``, that records how its rows
were made: format, model, revision, dtype, protocol and the working folder that relative paths
are relative to. The output itself stays plain CSV or JSONL, readable by ``pandas.read_csv`` and
``pandas.read_json(lines=True)`` with no options. A resume refuses to append rows in another
format, or rows from another model, revision, dtype or protocol, unless forced.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from imgsent.errors import ResumeMismatchError
from imgsent.outputs import OutputFormat

SIDECAR_SUFFIX = ".imgsent.json"
_CHECKED = ("model", "revision", "dtype", "binary")


@dataclass(frozen=True)
class RunRecord:
    """How the rows of an output file were made; stored as ``<output>.imgsent.json``.

    Attributes:
        format: ``"csv"`` or ``"jsonl"``.
        model: ``"default"``, a known name, a Hub repo id, or the absolute path of a model folder.
        revision: The Hub commit the model was loaded from; ``None`` for local models.
        dtype: The compute dtype, e.g. ``"float32"``.
        binary: Whether neutral was dropped (``--binary``).
        cwd: The folder that relative paths in the rows are relative to.
        imgsent_version: The imgsent version that wrote the first rows.

    Example:
        >>> record = RunRecord("csv", "default", None, "float32", False, "/data", "0.1.0")
        >>> record.differences(RunRecord("csv", "default", None, "bfloat16", False, "/data", "0.1.0"))
        ["dtype: 'float32' in the file, 'bfloat16' in this run"]
    """

    format: str
    model: str
    revision: str | None
    dtype: str
    binary: bool
    cwd: str
    imgsent_version: str

    def differences(self, other: RunRecord) -> list[str]:
        """What differs between the file's record and this run, one line per setting."""
        return [
            f"{name}: {getattr(self, name)!r} in the file, {getattr(other, name)!r} in this run"
            for name in _CHECKED
            if getattr(self, name) != getattr(other, name)
        ]


@dataclass(frozen=True)
class ResumeState:
    """What an existing output file holds.

    Attributes:
        rows: Complete rows in the file.
        done: Normalised paths of those rows (see :func:`path_key`).
        record: The file's :class:`RunRecord`, or ``None`` when it has no sidecar.
    """

    rows: int = 0
    done: frozenset[str] = frozenset()
    record: RunRecord | None = None


def sidecar_path(output: str | os.PathLike[str]) -> Path:
    """The record file next to an output: ``out.csv`` -> ``out.csv.imgsent.json``."""
    output = Path(output)
    return output.with_name(output.name + SIDECAR_SUFFIX)


def path_key(path: str, cwd: str) -> str:
    """Normalise a path for resume matching: absolute (against ``cwd``), ``..`` and ``//`` folded."""
    return os.path.normcase(os.path.normpath(os.path.join(cwd, path)))


def write_record(output: str | os.PathLike[str], record: RunRecord) -> None:
    """Write the sidecar of ``output``."""
    sidecar_path(output).write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")


def read_record(output: str | os.PathLike[str]) -> RunRecord | None:
    """Read the sidecar of ``output``; ``None`` when there is none.

    Raises:
        ResumeMismatchError: The sidecar exists but is not a valid record.
    """
    path = sidecar_path(output)
    if not path.exists():
        return None
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return RunRecord(**{f.name: data[f.name] for f in fields(RunRecord)})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResumeMismatchError(
            f"{path} is not a valid imgsent run record ({exc}). Delete it to resume without the "
            "model and dtype check, or write to another --output."
        ) from None


def sniff_format(output: str | os.PathLike[str]) -> OutputFormat | None:
    """Tell CSV from JSONL by the first line of a non-empty output file; ``None`` if neither."""
    with open(output, "rb") as handle:
        first = handle.readline(65536).strip()
    if first.startswith(b"{"):
        return "jsonl"
    if first.split(b",", 1)[0].strip(b'"') == b"path":
        return "csv"
    return None


def read_resume_state(output: str | os.PathLike[str], fmt: OutputFormat) -> ResumeState:
    """Read what ``output`` already holds, without changing it.

    A last line without a trailing newline (a killed write) is ignored here and cut off
    by :func:`imgsent.torn_lines.cut_torn_line` before appending.

    Raises:
        ResumeMismatchError: The file holds another format than ``fmt``, or its sidecar is invalid.

    Example:
        >>> state = read_resume_state("out.csv", "csv")  # doctest: +SKIP
        >>> state.rows, state.record.model  # doctest: +SKIP
        (480, 'default')
    """
    output = Path(output)
    if not output.exists() or output.stat().st_size == 0:
        return ResumeState()
    found = sniff_format(output)
    record = read_record(output)
    if found != fmt or (record is not None and record.format != fmt):
        what = f"{found.upper()} rows" if found else "rows in an unrecognised format"
        fix = f"resume with --format {found}, or " if found else ""
        raise ResumeMismatchError(
            f"{output} holds {what}, but this run writes {fmt.upper()}. Nothing was changed; "
            f"{fix}write to another --output."
        )
    data = output.read_bytes()
    data = data[: data.rfind(b"\n") + 1]
    text = data.decode("utf-8", errors="surrogateescape")
    cwd = record.cwd if record is not None else os.getcwd()
    paths: list[str] = []
    if fmt == "csv":
        paths = [row["path"] for row in csv.DictReader(io.StringIO(text, newline="")) if row.get("path")]
    else:
        for line in text.split("\n"):
            try:
                paths.append(json.loads(line)["path"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return ResumeState(rows=len(paths), done=frozenset(path_key(p, cwd) for p in paths), record=record)


def check_record(existing: RunRecord | None, current: RunRecord, *, output: str | os.PathLike[str], force: bool) -> None:
    """Refuse to append rows made differently from those already in ``output``, unless ``force``.

    Raises:
        ResumeMismatchError: Model, revision, dtype or protocol differ and ``force`` is false.
    """
    if existing is None or force:
        return
    diffs = existing.differences(current)
    if diffs:
        raise ResumeMismatchError(
            f"{output} was written by another setup, and mixing rows would make them incomparable: "
            + "; ".join(diffs)
            + ". Nothing was changed. Rerun with the file's settings, write to another --output, or pass --force to mix."
        )
