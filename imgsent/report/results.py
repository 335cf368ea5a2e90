"""The rows and run record of a results file, as the report shows them (read by :mod:`imgsent.results`)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from imgsent.outputs import OUTPUT_LABELS
from imgsent.results import Malformed, ResultRow, RunRecord, open_results

SHOWN_LABELS: tuple[str, ...] = OUTPUT_LABELS


@dataclass(frozen=True)
class ReportInput:
    """What the report shows of a results file.

    Attributes:
        rows: Every row; lines that are not valid rows become error rows that say so, and
            ``confidence`` is filled in for files written before that column existed.
        record: The run record from the sidecar, ``None`` when there is none.
        torn: Whether the last line was torn by a killed write (it is not a row).
    """

    rows: list[ResultRow]
    record: RunRecord | None
    torn: bool


def read_report_input(path: str | os.PathLike[str]) -> ReportInput:
    """Read a results file for the report.

    Raises:
        InputNotFoundError: The file does not exist.
        ResultsFileError: The file is unreadable, or neither classify CSV nor JSONL.
    """
    results = open_results(path)
    malformed: list[Malformed] = []
    rows = [dataclasses.replace(row, confidence=row.label_confidence) for row in results.iter_rows(malformed)]
    rows += [ResultRow(f"(line {bad.line})", error=bad.reason) for bad in malformed if bad.path is None]
    return ReportInput(rows, results.record, results.torn > 0)


def read_results(path: str | os.PathLike[str]) -> list[ResultRow]:
    """The rows of a results file as the report shows them (see :func:`read_report_input`).

    Raises:
        InputNotFoundError: The file does not exist.
        ResultsFileError: The file is unreadable, or neither classify CSV nor JSONL.
    """
    return read_report_input(path).rows


def describe_model(record: RunRecord | None) -> str | None:
    """The model line of the report from a run record: name, revision and engine; ``None`` without a record.

    Example:
        >>> describe_model(RunRecord("csv", "default", "bundled with imgsent 0.1.0", "float32", False, "/d", "0.1.0", 0.0, "openvino"))
        'default (revision bundled with imgsent 0.1.0, engine openvino, float32)'
    """
    if record is None:
        return None
    return (f"{record.model} (revision {record.revision or '-'}, engine {record.engine or 'not recorded'}, "
            f"{record.dtype}{', binary' if record.binary else ''})")
