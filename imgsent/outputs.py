"""Result records and the CSV / JSONL writers used by ``imgsent classify``.

Writers append whole rows and flush + fsync at batch boundaries, so a killed run
loses at most the batch in flight. On resume, a torn last line is cut off first.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from imgsent.config import LABELS

if TYPE_CHECKING:
    import pandas as pd

Label = Literal["negative", "neutral", "positive"]
OutputLabel = Literal["negative", "neutral", "positive", "uncertain"]
OutputFormat = Literal["csv", "jsonl"]
UNCERTAIN = "uncertain"
COLUMNS: tuple[str, ...] = ("path", "label", "confidence", "negative", "neutral", "positive", "error")
MEDIA_COLUMNS: tuple[str, ...] = ("frames", "time")
"""Optional columns: ``frames`` (frames classified, on a video's or animation's row) and ``time``
(seconds, on a sampled frame's row, see :mod:`imgsent.video_outputs`); empty on other rows."""


def output_columns(*, frames: bool = False, time: bool = False) -> tuple[str, ...]:
    """The columns of an output: :data:`COLUMNS`, plus the optional ``frames`` and ``time`` when asked.

    Example:
        >>> output_columns(frames=True)[-2:]
        ('error', 'frames')
    """
    return COLUMNS + (("frames",) if frames else ()) + (("time",) if time else ())


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
            {'source': 'cat.jpg', 'label': 'positive', 'negative': 0.05, 'neutral': 0.15, 'positive': 0.8, 'error': None, 'confidence': 0.8}
        """
        return asdict(self)

    def to_row(self) -> dict[str, str | float | None]:
        """The output row: ``path, label, confidence, negative, neutral, positive, error``."""
        return {
            "path": self.source,
            "label": self.label,
            "confidence": _round(self.confidence),
            "negative": _round(self.negative),
            "neutral": _round(self.neutral),
            "positive": _round(self.positive),
            "error": self.error,
        }

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
    """Choose the output format from ``--format`` or the file extension (default CSV)."""
    if explicit is not None:
        return explicit
    if path is not None and str(path).lower().endswith((".jsonl", ".ndjson")):
        return "jsonl"
    return "csv"


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

    def write(self, predictions: Iterable[Prediction]) -> None:
        """Write rows, then flush (and fsync when backed by a file)."""
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
