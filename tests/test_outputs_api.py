"""Prediction records as dicts and DataFrames, the Predictor's repr, and the resume record."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from imgsent.errors import MissingExtraError, ResumeMismatchError
from imgsent.outputs import Prediction, to_dataframe
from imgsent.resume import RunRecord, check_record, path_key, read_resume_state, sniff_format


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


def test_path_key_folds_spellings(tmp_path):
    assert path_key("photos/./a.jpg", str(tmp_path)) == path_key(str(tmp_path / "photos" / "a.jpg"), "/elsewhere")


def test_sniff_format(tmp_path):
    (tmp_path / "a").write_text('{"path": "x"}\n')
    (tmp_path / "b").write_text("path,label\nx,positive\n")
    (tmp_path / "c").write_text("hello\n")
    assert [sniff_format(tmp_path / n) for n in "abc"] == ["jsonl", "csv", None]
    with pytest.raises(ResumeMismatchError, match="unrecognised format"):
        read_resume_state(tmp_path / "c", "csv")


def test_check_record_lists_every_difference():
    old = RunRecord("csv", "default", None, "float32", False, "/d", "0.1.0")
    new = dataclasses.replace(old, model="org/other", binary=True)
    with pytest.raises(ResumeMismatchError, match=r"model: 'default' in the file, 'org/other' in this run; binary"):
        check_record(old, new, output="out.csv", force=False)
    check_record(old, new, output="out.csv", force=True)
