"""The one reader of results files, and the run record beside them.

``imgsent classify`` writes plain CSV or JSONL (columns in :data:`imgsent.outputs.RESULT_COLUMNS`)
and a sidecar, ``<output>.imgsent.json``, holding the :class:`RunRecord`: everything that changes
what a row means (model, revision, dtype, engine, protocol, ``min_confidence``). Resume, merge
and the report all read a results file through :func:`open_results`, which tells the format from
the content, reads the record, types every row and says whether the last line was torn by a
killed write (a torn line is never a row).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, Any, ClassVar

from imgsent.errors import InputNotFoundError, ResultsFileError
from imgsent.outputs import LABELS, OUTPUT_LABELS, RESULT_COLUMNS, UNCERTAIN, OutputFormat, row_from_values
from imgsent.torn_lines import complete_length

SIDECAR_SUFFIX = ".imgsent.json"
_PEEK = 65536


@dataclass(frozen=True)
class RunRecord:
    """How the rows of a results file were made; stored beside it as ``<output>.imgsent.json``.

    Attributes:
        format: ``"csv"`` or ``"jsonl"``.
        model: ``"default"``, a known name, a Hub repo id, or the absolute path of a model folder.
        revision: The Hub commit the model was loaded from; for the bundled model, the imgsent
            release that ships it; ``None`` for a local folder.
        dtype: The compute dtype, e.g. ``"float32"``.
        binary: Whether neutral was dropped (``--binary``).
        cwd: The folder that relative paths in the rows are relative to.
        imgsent_version: The imgsent version that wrote the first rows.
        min_confidence: The bar below which a label is ``"uncertain"`` (``None``: not recorded,
            by a version before it was).
        engine: ``"torch"``, ``"onnxruntime"`` or ``"openvino"`` (``None``: not recorded).
        frames: Frames sampled per video or animation (``--frames``; ``None``: not recorded).
        frame_rows: Whether each sampled frame got its own row (``--frame-rows``; ``None``: not recorded).

    Example:
        >>> record = RunRecord("csv", "default", None, "float32", False, "/data", "0.1.0", 0.0, "torch")
        >>> for line in record.differences(RunRecord("csv", "default", None, "bfloat16", False, "/data", "0.1.0", 0.6, "torch")):
        ...     print(line)
        dtype: 'float32' in the file, 'bfloat16' in this run
        min_confidence: 0.0 in the file, 0.6 in this run
    """

    format: str
    model: str
    revision: str | None
    dtype: str
    binary: bool
    cwd: str
    imgsent_version: str
    min_confidence: float | None = None
    engine: str | None = None
    frames: int | None = None
    frame_rows: bool | None = None

    # What changes the meaning of a row; a resume must match every one of them.
    CHECKED: ClassVar[tuple[str, ...]] = (
        "model", "revision", "dtype", "engine", "binary", "min_confidence", "frames", "frame_rows",
    )
    # absent from records of older versions
    _LATER: ClassVar[tuple[str, ...]] = ("min_confidence", "engine", "frames", "frame_rows")

    def differences(self, other: RunRecord) -> list[str]:
        """What differs between this (the file's) record and ``other`` (this run's), one item per setting."""
        return [
            f"{name}: {getattr(self, name)!r} in the file, {getattr(other, name)!r} in this run"
            for name in self.CHECKED
            if getattr(self, name) != getattr(other, name) and not (name in self._LATER and getattr(self, name) is None)
        ]


def sidecar_path(output: str | os.PathLike[str]) -> Path:
    """The record file next to an output: ``out.csv`` -> ``out.csv.imgsent.json``."""
    output = Path(output)
    return output.with_name(output.name + SIDECAR_SUFFIX)


def write_record(output: str | os.PathLike[str], record: RunRecord) -> None:
    """Write the sidecar of ``output``."""
    sidecar_path(output).write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")


def _read_record(output: Path) -> tuple[RunRecord | None, str | None]:
    """The sidecar's record (``None`` when there is none), and why it is unusable (``None`` when it is fine)."""
    path = sidecar_path(output)
    if not path.exists():
        return None, None
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(RunRecord)}
        return RunRecord(**{key: value for key, value in data.items() if key in known}), None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return None, f"{path} is not a valid imgsent run record ({exc})"


@dataclass(frozen=True)
class ResultRow:
    """One row read back from a results file, typed by :data:`~imgsent.outputs.RESULT_COLUMNS`.

    Attributes mirror the columns; a value that is empty in the file (or a column the file does
    not have) is ``None``. ``confidence`` is ``None`` in files written before that column existed
    (see :attr:`label_confidence`); ``frames`` is set on a video's or animation's row, ``time`` on
    a sampled frame's row (path ``<file>#t=<seconds>``).

    Example:
        >>> row = ResultRow("a.jpg", "negative", None, 0.7, 0.1, 0.2, None)
        >>> row.ok, row.probabilities, row.label_confidence
        (True, (0.7, 0.1, 0.2), 0.7)
    """

    path: str
    label: str | None = None
    confidence: float | None = None
    negative: float | None = None
    neutral: float | None = None
    positive: float | None = None
    error: str | None = None
    frames: int | None = None
    time: float | None = None

    @property
    def ok(self) -> bool:
        """True when the row holds a label rather than an error."""
        return self.error is None

    @property
    def probabilities(self) -> tuple[float, float, float] | None:
        """``(negative, neutral, positive)``, or ``None`` for an error row."""
        if not self.ok:
            return None
        return (self.negative, self.neutral, self.positive)  # type: ignore[return-value]

    @property
    def label_confidence(self) -> float | None:
        """The confidence column, or for older files the probability of the label (of the highest, for ``uncertain``)."""
        probs = self.probabilities
        if self.confidence is not None or probs is None:
            return self.confidence
        return max(probs) if self.label == UNCERTAIN else probs[LABELS.index(str(self.label))]

    def to_row(self) -> dict[str, str | float | None]:
        """The row as the writer writes it (:meth:`imgsent.outputs.Prediction.to_row`)."""
        return row_from_values(asdict(self))


@dataclass(frozen=True)
class Malformed:
    """A line of a results file that is not a valid row.

    Attributes:
        line: Its line number (1-based).
        reason: What is wrong with it.
        path: The path it names, when it names one (its row is then an error row).
    """

    line: int
    reason: str
    path: str | None = None


@dataclass(frozen=True)
class ResultsFile:
    """What a results file holds, from :func:`open_results`; the rows are read by :meth:`iter_rows`.

    Attributes:
        path: The file.
        format: ``"csv"`` or ``"jsonl"`` (told from the content); ``None`` when the file is
            missing or empty.
        columns: The CSV header, or the keys of the first JSONL row.
        record: The sidecar's :class:`RunRecord`; ``None`` when there is none.
        record_problem: Why the sidecar is unusable, else ``None``.
        torn: Bytes of an unterminated last line (a killed write); 0 when the file ends in a newline.
    """

    path: Path
    format: OutputFormat | None
    columns: tuple[str, ...] = ()
    record: RunRecord | None = None
    record_problem: str | None = None
    torn: int = 0

    def iter_rows(self, malformed: list[Malformed] | None = None) -> Iterator[ResultRow]:
        """Stream the complete rows. A line with a path but bad values becomes an error row.

        Args:
            malformed: When given, every line that is not a valid row is appended to it.
        """
        if self.format is None:
            return
        problems = malformed if malformed is not None else []
        with open(self.path, "rb") as handle:
            lines = _complete_lines(handle)
            if self.format == "csv":
                reader = csv.reader(lines)
                next(reader, None)
                for values in reader:
                    row = _row(dict(zip(self.columns, values)), reader.line_num, problems)
                    if row is not None:
                        yield row
                return
            for number, line in enumerate(lines, 1):
                if line.strip():
                    row = _json_row(line, number, problems)
                    if row is not None:
                        yield row

    def read_rows(self, malformed: list[Malformed] | None = None) -> list[ResultRow]:
        """Every complete row, in file order (see :meth:`iter_rows`)."""
        return list(self.iter_rows(malformed))


def open_results(path: str | os.PathLike[str], *, missing_ok: bool = False) -> ResultsFile:
    """Open a results file: its format (from the content), columns, run record and torn-line state.

    Args:
        path: A CSV or JSONL file written by ``imgsent classify`` or ``imgsent merge``.
        missing_ok: Treat a missing file as empty instead of raising.

    Returns:
        A :class:`ResultsFile`; read its rows with :meth:`ResultsFile.iter_rows`.

    Raises:
        InputNotFoundError: The file does not exist (and ``missing_ok`` is false).
        ResultsFileError: The file cannot be read, or is neither classify CSV nor JSONL.

    Example:
        >>> results = open_results("out.csv")  # doctest: +SKIP
        >>> results.format, results.record.model, len(results.read_rows()), results.torn  # doctest: +SKIP
        ('csv', 'default', 480, 0)
    """
    path = Path(path)
    record, problem = _read_record(path)
    try:
        with open(path, "rb") as handle:
            first = handle.readline(_PEEK)
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _PEEK))
            tail = handle.read()
    except FileNotFoundError:
        if missing_ok:
            return ResultsFile(path, None, record=record, record_problem=problem)
        raise InputNotFoundError(f"Results file not found: {str(path)!r}. Write one with: imgsent classify DIR -o results.csv") from None
    except OSError as exc:
        raise ResultsFileError(f"Cannot read results file {str(path)!r}: {exc.strerror or exc}.") from None
    torn = len(tail) - complete_length(tail)
    fmt = detect_format(first, path)
    columns: tuple[str, ...] = ()
    if fmt == "csv":
        columns = tuple(next(csv.reader([first.decode("utf-8", "surrogateescape")])))
        if "label" not in columns:
            raise ResultsFileError(_not_results(path, first))
    elif fmt == "jsonl":
        try:
            columns = tuple(json.loads(first))
        except (ValueError, TypeError):
            columns = ()
    return ResultsFile(path, fmt, columns, record, problem, torn)


def detect_format(first_line: bytes, path: str | os.PathLike[str] = "") -> OutputFormat | None:
    """Tell CSV from JSONL by a file's first line; ``None`` for an empty file.

    Raises:
        ResultsFileError: The line starts neither a JSON object nor a CSV header whose first column is ``path``.

    Example:
        >>> detect_format(b'{"path": "a.jpg"}'), detect_format(b"path,label\\n"), detect_format(b"")
        ('jsonl', 'csv', None)
    """
    line = first_line.strip()
    if not line:
        return None
    if line.startswith(b"{"):
        return "jsonl"
    if line.split(b",", 1)[0].strip(b'"') == b"path":
        return "csv"
    raise ResultsFileError(_not_results(path, first_line))


def _not_results(path: str | os.PathLike[str], first: bytes) -> str:
    return (
        f"{os.fspath(path)!r} is not a classify output: expected a CSV header with 'path' and 'label' or JSONL "
        f"objects, and its first line is {first[:80].decode('utf-8', 'replace').rstrip()!r} (an unrecognised format)."
    )


def _complete_lines(handle: IO[bytes]) -> Iterator[str]:
    """The file's lines up to its last newline; a torn last line is never yielded."""
    for raw in handle:
        if not raw.endswith(b"\n"):
            return
        yield raw.decode("utf-8", "surrogateescape")


def _json_row(line: str, number: int, malformed: list[Malformed]) -> ResultRow | None:
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        malformed.append(Malformed(number, "malformed JSON line in the results file"))
        return None
    if not isinstance(data, dict):
        malformed.append(Malformed(number, "results line is not a JSON object"))
        return None
    return _row(data, number, malformed)


def _row(data: dict[str, Any], number: int, malformed: list[Malformed]) -> ResultRow | None:
    """Type one row by the column table; a row with bad values becomes an error row that says so."""
    path = data.get("path")
    if not isinstance(path, str) or not path:
        malformed.append(Malformed(number, f"line {number} has no 'path'"))
        return None
    values: dict[str, Any] = {"path": path}
    problems: list[str] = []
    for column in RESULT_COLUMNS[1:]:
        raw = data.get(column.name)
        if raw is None or raw == "":
            values[column.name] = None
        elif column.kind in _WORDS:
            values[column.name] = _number(raw, column.kind)
            if values[column.name] is None:
                problems.append(f"{column.name} {raw!r} is not {_WORDS[column.kind]}")
        else:
            values[column.name] = str(raw)
    row = ResultRow(**values)
    if row.error is None:
        if not problems and None in (row.negative, row.neutral, row.positive):
            problems.append("a probability is missing")
        if row.label not in OUTPUT_LABELS:
            problems.append(f"label {row.label!r}")
    if not problems:
        return row
    reason = f"malformed row {number} in the results file ({'; '.join(problems)})"
    malformed.append(Malformed(number, reason, path))
    return ResultRow(path, error=reason)


_WORDS = {"probability": "a probability", "count": "a whole number >= 0", "seconds": "a number >= 0"}


def _number(value: object, kind: str) -> int | float | None:
    """A ``probability`` (in [0, 1]), ``count`` (int >= 0) or ``seconds`` (>= 0) cell; ``None`` when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number < 0 or (kind == "probability" and number > 1):
        return None
    if kind == "count":
        return int(number) if number.is_integer() else None
    return number


__all__ = ["Malformed", "ResultRow", "ResultsFile", "RunRecord", "detect_format", "open_results", "sidecar_path"]
