"""Prediction records, the one column table, output formats, and the one results reader."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest

from imgsent.errors import InputNotFoundError, MissingExtraError, OutputFormatError, OutputNotWritableError, ResultsFileError
from imgsent.outputs import (
    COLUMNS, RESULT_COLUMNS, Prediction, ResultWriter, check_writable, infer_format, output_columns, to_dataframe,
)
from imgsent.results import Malformed, ResultRow, RunRecord, open_results, write_record


def test_to_dict_has_every_field():
    p = Prediction("cat.jpg", "positive", 0.05, 0.15, 0.80)
    assert p.to_dict() == {f.name: getattr(p, f.name) for f in dataclasses.fields(Prediction)}
    assert p.to_dict()["positive"] == 0.80


def test_to_dataframe():
    pytest.importorskip("pandas")
    frame = to_dataframe([Prediction("a.jpg", "positive", 0.1, 0.2, 0.7), Prediction.failed("b.jpg", "b.jpg: no such file")])
    assert list(frame.columns) == [f.name for f in dataclasses.fields(Prediction)]
    assert frame.loc[0, "positive"] == 0.7 and frame.loc[1, "error"] == "b.jpg: no such file"


def test_to_dataframe_without_pandas_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'imgsent\[pandas\]'"):
        to_dataframe([Prediction("a.jpg", "positive", 0.1, 0.2, 0.7)])


def test_predictor_repr(tiny_model_dir):
    from imgsent.predictor import Predictor

    predictor = Predictor.from_pretrained(tiny_model_dir, device="cpu", dtype="float32", backend="torch")
    assert repr(predictor) == f"Predictor(model={str(tiny_model_dir)!r}, device='cpu', dtype='float32', engine='torch')"



def test_one_column_table_drives_the_writer_and_the_reader():
    assert COLUMNS == ("path", "label", "confidence", "negative", "neutral", "positive", "error")
    names = tuple(column.name for column in RESULT_COLUMNS)
    assert names == (*COLUMNS, "frames", "time")  # the optional ones: videos and their frames
    assert tuple(f.name for f in dataclasses.fields(ResultRow)) == names
    assert tuple(Prediction("a.jpg", "positive", 0.1, 0.2, 0.7).to_row()) == names
    prediction_fields = [f.name for f in dataclasses.fields(Prediction)]
    assert set(names) - {"path"} <= set(prediction_fields) and "source" in prediction_fields
    assert all(column.help and "{" not in column.help for column in RESULT_COLUMNS)


@pytest.mark.parametrize(("name", "explicit", "chosen"), [
    ("out.csv", None, "csv"), ("OUT.JSONL", None, "jsonl"), ("x.ndjson", None, "jsonl"), (None, None, "csv"),
    ("x.txt", "jsonl", "jsonl"), ("noext", "csv", "csv"),
])
def test_infer_format(name, explicit, chosen):
    assert infer_format(name, explicit) == chosen


def test_an_unknown_extension_lists_the_formats():
    with pytest.raises(OutputFormatError, match=r"'x.txt' has the extension '.txt', which names no results format. Name the file "
                                                r"\.csv or \.jsonl, or pass --format csv or --format jsonl"):
        infer_format("x.txt", None)
    with pytest.raises(OutputFormatError, match="'results' has no extension, which names no results format"):
        infer_format("results", None)
    with pytest.raises(OutputFormatError, match="'xml' is not a results format. Use csv or jsonl"):
        infer_format("x.csv", "xml")  # type: ignore[arg-type]


def test_check_writable(tmp_path):
    check_writable(tmp_path / "new" / "deeper" / "out.csv")  # folders that can be made are fine; nothing is created
    assert not (tmp_path / "new").exists()
    with pytest.raises(OutputNotWritableError, match="it is a folder"):
        check_writable(tmp_path)
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputNotWritableError, match="permission denied"):
        check_writable(locked / "out.csv")


def _write(path: Path, fmt: str, predictions: list[Prediction]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as stream:
        ResultWriter(stream, fmt, write_header=True).write(predictions)  # type: ignore[arg-type]
    return path


PREDICTIONS = [
    Prediction("a.jpg", "positive", 0.05, 0.15, 0.8),
    Prediction("new\nline, \"quoted\".png", "uncertain", 0.3, 0.3, 0.4, confidence=0.4),
    Prediction.failed("c.jpg", "c.jpg: no such file"),
]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_the_reader_reads_back_what_the_writer_wrote(tmp_path, fmt):
    path = _write(tmp_path / f"out.{fmt}", fmt, PREDICTIONS)
    record = RunRecord(fmt, "default", "abc", "float32", False, str(tmp_path), "0.1.0", 0.35, "openvino")
    write_record(path, record)
    results = open_results(path)
    assert (results.format, results.record, results.record_problem, results.torn) == (fmt, record, None, 0)
    rows = results.read_rows()
    assert [row.to_row() for row in rows] == [p.to_row() for p in PREDICTIONS]
    assert rows[0].probabilities == (0.05, 0.15, 0.8) and rows[2].ok is False and rows[2].probabilities is None


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_torn_last_line_is_never_a_row(tmp_path, fmt):
    path = _write(tmp_path / f"out.{fmt}", fmt, PREDICTIONS[:1])
    with open(path, "ab") as handle:
        handle.write(b'b.jpg,posit' if fmt == "csv" else b'{"path": "b.jp')
    results = open_results(path)
    assert results.torn == (11 if fmt == "csv" else 14)
    assert [row.path for row in results.read_rows()] == ["a.jpg"]


def test_malformed_lines_are_reported_not_raised(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text(
        json.dumps({"path": "a.jpg", "label": "negative", "negative": 0.7, "neutral": 0.1, "positive": 0.2}) + "\n"
        + "not json\n" + json.dumps({"path": "b.jpg", "label": "happy", "negative": 0.7, "neutral": 0.1, "positive": 2}) + "\n"
        + json.dumps({"label": "negative"}) + "\n\n",
        encoding="utf-8",
    )
    malformed: list[Malformed] = []
    rows = open_results(path).read_rows(malformed)
    assert [row.path for row in rows] == ["a.jpg", "b.jpg"]
    assert rows[0].confidence is None and rows[0].label_confidence == 0.7  # written before the column existed
    assert rows[1].error == "malformed row 3 in the results file (positive 2 is not a probability; label 'happy')"
    assert malformed == [Malformed(2, "malformed JSON line in the results file"),
                         Malformed(3, rows[1].error, "b.jpg"), Malformed(4, "line 4 has no 'path'")]


def test_frames_and_time_are_typed_by_the_column_table(tmp_path):
    path = tmp_path / "out.csv"
    good = dict(label="positive", negative=0.1, neutral=0.2, positive=0.7, error=None)
    with open(path, "w", encoding="utf-8", newline="") as stream:
        ResultWriter(stream, "csv", write_header=True, columns=output_columns(frames=True, time=True)).write([
            Prediction("v.mp4#t=0.5", **good, time=0.5), Prediction("v.mp4", **good, frames=1),
            Prediction("a.jpg", **good),
        ])
    with open(path, "a", encoding="utf-8") as stream:
        stream.write("w.mp4,positive,0.7,0.1,0.2,0.7,,2.5,\nw.mp4#t=1,positive,0.7,0.1,0.2,0.7,,,-1\n")
    malformed: list[Malformed] = []
    rows = open_results(path).read_rows(malformed)
    assert [(r.frames, r.time) for r in rows[:3]] == [(None, 0.5), (1, None), (None, None)]
    assert isinstance(rows[1].frames, int) and rows[1].to_row()["frames"] == 1
    assert rows[3].error == "malformed row 5 in the results file (frames '2.5' is not a whole number >= 0)"
    assert rows[4].error == "malformed row 6 in the results file (time '-1' is not a number >= 0)"
    assert [m.line for m in malformed] == [5, 6]


def test_open_results_errors_and_empty_files(tmp_path):
    with pytest.raises(InputNotFoundError, match="Results file not found"):
        open_results(tmp_path / "nope.csv")
    assert open_results(tmp_path / "nope.csv", missing_ok=True).format is None
    (tmp_path / "empty.csv").write_bytes(b"")
    assert open_results(tmp_path / "empty.csv").read_rows() == []
    (tmp_path / "other.csv").write_text("path,size\na.jpg,3\n")
    with pytest.raises(ResultsFileError, match="not a classify output"):
        open_results(tmp_path / "other.csv")
    path = _write(tmp_path / "out.csv", "csv", PREDICTIONS)
    (tmp_path / "out.csv.imgsent.json").write_text("[1, 2]")
    assert "is not a valid imgsent run record" in (open_results(path).record_problem or "")
