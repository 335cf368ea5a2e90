"""Result records and the CSV / JSONL writers used by ``imgsent classify``.

Writers append whole rows and flush + fsync at batch boundaries, so a killed run
loses at most the batch in flight. On resume, a torn last line is cut off first.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from imgsent.config import LABELS
from imgsent.errors import OutputNotWritableError

if TYPE_CHECKING:
    import pandas as pd

Label = Literal["negative", "neutral", "positive"]
OutputLabel = Literal["negative", "neutral", "positive", "uncertain"]
OutputFormat = Literal["csv", "jsonl"]
UNCERTAIN = "uncertain"
OUTPUT_LABELS: tuple[str, ...] = (*LABELS, UNCERTAIN)
FORMATS: tuple[OutputFormat, ...] = ("csv", "jsonl")
EXTENSIONS: dict[str, OutputFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class Column:
    """One column of a results file.

    Attributes:
        name: The CSV header and JSONL key.
        kind: ``"text"``, ``"probability"`` (a number in [0, 1]), ``"count"`` (a whole number)
            or ``"seconds"`` (a number >= 0); how a reader types it.
        help: One line on what the column holds, for ``imgsent classify --help`` and the docs.
        optional: Written only by runs that may fill it (see :func:`output_columns`).
    """

    name: str
    kind: Literal["text", "probability", "count", "seconds"]
    help: str
    optional: bool = False


# The one list of results columns: the writer, the reader, merge and --help all follow it.
RESULT_COLUMNS: tuple[Column, ...] = (
    Column("path", "text", "the input file, as given or found by the scan"),
    Column("label", "text", "negative, neutral or positive; 'uncertain' when confidence is below --min-confidence; "
                            "empty on error"),
    Column("confidence", "probability", "calibrated probability of the predicted polarity (kept for 'uncertain')"),
    Column("negative", "probability", "probability of negative"),
    Column("neutral", "probability", "probability of neutral (0 to 1; never the label with --binary)"),
    Column("positive", "probability", "probability of positive"),
    Column("error", "text", "why the file could not be classified; empty when it was"),
    Column("frames", "count", "frames classified, on a video's or animated image's row (their mean gives its "
                              "probabilities); empty on other rows", optional=True),
    Column("time", "seconds", "seconds into the file, on a sampled frame's row (path FILE#t=SECONDS, "
                              "--frame-rows); empty on other rows", optional=True),
)
COLUMNS: tuple[str, ...] = tuple(column.name for column in RESULT_COLUMNS if not column.optional)
"""The columns every results file has; a run that may meet videos adds the optional ones."""


def output_columns(*, frames: bool = False, time: bool = False) -> tuple[str, ...]:
    """The columns of an output: :data:`COLUMNS`, plus the optional ``frames`` and ``time`` when asked.

    Example:
        >>> output_columns(frames=True)[-2:]
        ('error', 'frames')
    """
    wanted = {"frames": frames, "time": time}
    return tuple(c.name for c in RESULT_COLUMNS if not c.optional or wanted[c.name])


@dataclass(frozen=True)
class Prediction:
    """The polarity of one input image, or why it could not be read.

    Attributes:
        source: The input's path, or a short description of an in-memory input.
        label: ``"negative"``, ``"neutral"`` or ``"positive"``; ``None`` when ``error`` is set.
            With ``binary=True`` it is never ``"neutral"``. With ``min_confidence``, a prediction
            whose confidence is below it is ``"uncertain"`` (its probabilities and confidence are
            kept, so the polarity it leaned to is still known).
        negative: Probability of negative (0 to 1), ``None`` on error.
        neutral: Probability of neutral, ``None`` on error.
        positive: Probability of positive, ``None`` on error.
        error: Why the input could not be classified, else ``None``.
        confidence: The calibrated probability of the predicted polarity (for ``"uncertain"``,
            of the polarity it would have had). Filled in from the probabilities when not given;
            ``None`` on error.
        frames: For a video or animated image, the number of frames classified (their mean
            probabilities are this record's); ``None`` for a photo and on error.
        time: For one sampled frame of a video or animation, its seconds from the start;
            ``None`` otherwise.

    Example:
        >>> p = Prediction("cat.jpg", "positive", 0.05, 0.15, 0.80)
        >>> p.ok, p.confidence, p.probabilities
        (True, 0.8, {'negative': 0.05, 'neutral': 0.15, 'positive': 0.8})
    """

    source: str
    label: OutputLabel | None
    negative: float | None = None
    neutral: float | None = None
    positive: float | None = None
    error: str | None = None
    confidence: float | None = None
    frames: int | None = field(default=None, repr=False)  # shown by VideoPrediction / FramePrediction
    time: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.confidence is None and self.label in LABELS:
            object.__setattr__(self, "confidence", getattr(self, self.label))

    @property
    def ok(self) -> bool:
        """True when the image was classified."""
        return self.error is None

    @property
    def probabilities(self) -> dict[str, float] | None:
        """The three probabilities keyed by label, or ``None`` on error."""
        if not self.ok:
            return None
        return {"negative": self.negative, "neutral": self.neutral, "positive": self.positive}  # type: ignore[dict-item]

    def to_dict(self) -> dict[str, Any]:
        """Every field of the record, keyed by field name.

        Example:
            >>> Prediction("cat.jpg", "positive", 0.05, 0.15, 0.80).to_dict()
            {'source': 'cat.jpg', 'label': 'positive', 'negative': 0.05, 'neutral': 0.15, 'positive': 0.8, 'error': None, 'confidence': 0.8, 'frames': None, 'time': None}
        """
        return asdict(self)

    def to_row(self) -> dict[str, str | float | None]:
        """The output row, one value per :data:`RESULT_COLUMNS` (``frames``/``time`` empty for a photo)."""
        return row_from_values({**asdict(self), "path": self.source})

    @classmethod
    def failed(cls, source: str, error: str) -> Prediction:
        """A prediction that carries an error instead of a label."""
        return cls(source=source, label=None, error=error)


def to_dataframe(predictions: Sequence[Prediction]) -> pd.DataFrame:
    """Turn predictions into a :class:`pandas.DataFrame`, one row per prediction and one column per field.

    Needs pandas (``pip install 'imgsent[pandas]'``); it is imported only here.

    Args:
        predictions: Predictions, e.g. from :meth:`imgsent.Predictor.predict`.

    Returns:
        A DataFrame with the columns of :meth:`Prediction.to_dict`, in field order.

    Raises:
        MissingExtraError: pandas is not installed.

    Example:
        >>> frame = to_dataframe([Prediction("a.jpg", "positive", 0.1, 0.2, 0.7), Prediction.failed("b.jpg", "b.jpg: no such file")])
        >>> frame[["source", "label", "positive"]]
          source     label  positive
        0  a.jpg  positive       0.7
        1  b.jpg       NaN       NaN
    """
    from dataclasses import fields

    from imgsent.errors import require_extra

    require_extra("pandas", "pandas")
    import pandas as pd

    columns = [f.name for f in fields(Prediction)]
    return pd.DataFrame([p.to_dict() for p in predictions], columns=columns)


def row_from_values(values: dict[str, Any]) -> dict[str, str | float | None]:
    """The output row of :data:`RESULT_COLUMNS` from a record's values, probabilities and seconds rounded to 6 digits."""
    return {c.name: _round(values.get(c.name)) if c.kind in ("probability", "seconds") else values.get(c.name)
            for c in RESULT_COLUMNS}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def labelled(
    source: str, probs: tuple[float, float, float], *, binary: bool = False, min_confidence: float = 0.0
) -> Prediction:
    """The prediction for one image's probabilities: argmax label, its confidence, ``uncertain`` below the bar.

    Example:
        >>> labelled("a.jpg", (0.2, 0.3, 0.5), min_confidence=0.6)
        Prediction(source='a.jpg', label='uncertain', negative=0.2, neutral=0.3, positive=0.5, error=None, confidence=0.5)
    """
    label = label_from_probabilities(probs, binary=binary)
    confidence = probs[LABELS.index(label)]
    shown: OutputLabel = UNCERTAIN if confidence < min_confidence else label
    return Prediction(source, shown, probs[0], probs[1], probs[2], confidence=confidence)


def check_min_confidence(value: float) -> float:
    """Validate a ``min_confidence`` (a probability in [0, 1]).

    Raises:
        InvalidConfigError: The value is not a number in [0, 1].
    """
    from imgsent.errors import InvalidConfigError

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidConfigError(f"min_confidence must be a probability in [0, 1], got {value!r}. Example: 0.6")
    return float(value)


def label_from_probabilities(probs: tuple[float, float, float], *, binary: bool) -> Label:
    """Argmax label; with ``binary`` the neutral output is dropped (the paper's protocol)."""
    if binary:
        return "positive" if probs[2] > probs[0] else "negative"
    best = max(range(3), key=lambda i: probs[i])
    return LABELS[best]  # type: ignore[return-value]


def infer_format(path: str | os.PathLike[str] | None, explicit: OutputFormat | None) -> OutputFormat:
    """Choose the output format: ``explicit`` when given, else the extension; CSV for stdout.

    Raises:
        OutputFormatError: ``explicit`` is not csv or jsonl, or ``path`` has an extension that
            names no format (e.g. ``.txt``) and ``explicit`` is ``None``.

    Example:
        >>> infer_format("out.JSONL", None), infer_format("out.txt", "csv"), infer_format(None, None)
        ('jsonl', 'csv', 'csv')
    """
    from imgsent.errors import OutputFormatError

    if explicit is not None:
        if explicit not in FORMATS:
            raise OutputFormatError(f"{explicit!r} is not a results format. Use csv or jsonl.")
        return explicit
    if path is None:
        return "csv"
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in EXTENSIONS:
        what = f"the extension {suffix!r}" if suffix else "no extension"
        raise OutputFormatError(
            f"{os.fspath(path)!r} has {what}, which names no results format. "
            "Name the file .csv or .jsonl, or pass --format csv or --format jsonl."
        )
    return EXTENSIONS[suffix]


class _Row(Protocol):
    def to_row(self) -> dict[str, str | float | None]: ...



def write_table(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> Path:
    """Write rows as CSV (with a header) or JSONL, chosen by the extension (``.jsonl``/``.ndjson``, else CSV).

    Args:
        path: File to write (replaced if it exists); its folder is created.
        rows: One mapping per row; keys outside ``columns`` are dropped, missing ones are empty.
        columns: Column names, in order.

    Returns:
        The path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", newline="", encoding="utf-8") as handle:
        if infer_format(target, None) == "jsonl":
            for row in rows:
                handle.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return target

class ResultWriter:
    """Append prediction rows to a CSV or JSONL stream, durably when it is a file.

    Args:
        stream: A text stream opened for appending.
        fmt: ``"csv"`` or ``"jsonl"``.
        write_header: Write the CSV header first (only for new, empty files).
        columns: The columns of every row, in order (default :data:`COLUMNS`; see
            :func:`output_columns`); a row without one of them leaves it empty.
    """

    def __init__(self, stream: io.TextIOBase, fmt: OutputFormat, *, write_header: bool,
                 columns: Sequence[str] = COLUMNS) -> None:
        self._stream = stream
        self._fmt = fmt
        self._columns = tuple(columns)
        self._csv = csv.DictWriter(stream, fieldnames=self._columns, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None and write_header:
            self._csv.writeheader()

    def write(self, predictions: Iterable[_Row]) -> None:
        """Write rows (:class:`Prediction` or read-back :class:`~imgsent.results.ResultRow`), then flush and fsync."""
        for prediction in predictions:
            row = prediction.to_row()
            row = {name: row.get(name) for name in self._columns}
            if self._csv is not None:
                try:
                    self._csv.writerow(row)
                except UnicodeEncodeError:  # a stream without surrogateescape (stdout) and a non-UTF-8 name
                    self._csv.writerow({**row, "path": _printable(str(row["path"]))})
            else:
                line = json.dumps(row, ensure_ascii=False)
                try:
                    line.encode("utf-8")
                except UnicodeEncodeError:
                    line = json.dumps(row)  # \udcXX escapes keep non-UTF-8 names exact
                self._stream.write(line + "\n")
        self._stream.flush()
        try:
            os.fsync(self._stream.fileno())
        except (OSError, io.UnsupportedOperation, AttributeError, ValueError):
            pass


def _printable(path: str) -> str:
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def check_writable(path: str | os.PathLike[str], *, kind: str = "output", folder: bool = False) -> Path:
    """Check, before any work, that ``path`` can be written; create nothing.

    A file path must not be a folder; a folder path (``folder=True``) must not be a file. An
    existing path must be writable. Otherwise its nearest existing parent must be a writable
    folder, so that the missing folders can be created.

    Args:
        path: The file (or, with ``folder``, the folder) that will be written.
        kind: What the path is, for the message, e.g. ``"report"``. Defaults to ``"output"``.
        folder: The path is a folder to write into, not a file. Defaults to ``False``.

    Returns:
        The path, with ``~`` expanded.

    Raises:
        OutputNotWritableError: The path cannot be written; the message says why and what to pass instead.

    Example:
        >>> str(check_writable("runs/new/out.csv"))
        'runs/new/out.csv'
        >>> check_writable("examples/images/coffee_cup.jpg/report.html", kind="report")
        Traceback (most recent call last):
        ...
        imgsent.errors.OutputNotWritableError: Cannot write the report 'examples/images/coffee_cup.jpg/report.html': 'examples/images/coffee_cup.jpg' is a file, not a folder. Pass a path whose folders exist or can be created.
    """
    target = Path(path).expanduser()

    def refuse(reason: str, fix: str) -> OutputNotWritableError:
        return OutputNotWritableError(f"Cannot write the {kind} {os.fspath(path)!r}: {reason}. {fix}")

    if target.is_dir() and not folder:
        raise refuse("it is a folder", "Pass a file path, e.g. one inside that folder.")
    if folder and target.exists() and not target.is_dir():
        raise refuse("it is a file, not a folder", "Pass a folder path, or remove the file.")
    if target.exists():
        if not os.access(target, os.W_OK | (os.X_OK if folder else 0)):
            raise refuse("permission denied", "Pick a writable location, or change its permissions.")
        return target
    parent = target.parent
    while not parent.exists():
        if parent.is_symlink():
            raise refuse(f"{os.fspath(parent)!r} is a broken symbolic link", "Fix the link, or pass another path.")
        parent = parent.parent
    if not parent.is_dir():
        raise refuse(f"{os.fspath(parent)!r} is a file, not a folder", "Pass a path whose folders exist or can be created.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise refuse(f"the folder {os.fspath(parent)!r} is not writable (permission denied)",
                     "Pick a writable location, or change its permissions.")
    return target
