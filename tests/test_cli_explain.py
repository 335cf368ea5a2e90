"""``imgsent explain`` (imgsent/cli/explain.py): folders like classify, checks before loading, an index file."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgsent.cli.app import app
from tests.conftest import make_photo

runner = CliRunner()


def _explain(model_dir: Path, *args: object):
    return runner.invoke(app, ["explain", *map(str, args), "-m", str(model_dir), "--device", "cpu"], env={"COLUMNS": "200"})


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    """photos/ with two images and a sub-folder holding one more, plus a file that is not an image."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    make_photo(root / "a.jpg", size=(60, 40))
    make_photo(root / "b.png", seed=1)
    make_photo(root / "sub" / "c.jpg", seed=2)
    (root / "notes.txt").write_text("not an image")
    return root


def test_a_folder_is_explained_like_classify_reads_it(tiny_model_dir: Path, nested: Path, tmp_path: Path) -> None:
    pytest.importorskip("pytorch_grad_cam")
    out = tmp_path / "out"
    result = _explain(tiny_model_dir, nested, "-o", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "index.csv"]
    with open(out / "index.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["source"] for r in rows] == [str(nested / "a.jpg"), str(nested / "b.png")]
    assert [r["overlay"] for r in rows] == [str(out / "a.png"), str(out / "b.png")]
    assert all(r["label"] in {"negative", "neutral", "positive"} and 0 < float(r["confidence"]) <= 1 for r in rows)
    assert all(r["error"] == "" for r in rows)
    assert "2 explained, 0 errors" in result.output


def test_recursive_and_a_jsonl_index_with_error_rows(tiny_model_dir: Path, nested: Path, tmp_path: Path) -> None:
    pytest.importorskip("pytorch_grad_cam")
    broken = nested / "sub" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    index = tmp_path / "listing" / "explained.jsonl"
    result = _explain(tiny_model_dir, nested, "-r", "-o", tmp_path / "out", "--index", index)
    assert result.exit_code == 3, result.output
    rows = [json.loads(line) for line in index.read_text(encoding="utf-8").splitlines()]
    assert [Path(r["source"]).name for r in rows] == ["a.jpg", "b.png", "broken.jpg", "c.jpg"]
    bad = rows[2]
    assert bad["overlay"] is None and bad["label"] is None and bad["confidence"] is None and "broken.jpg" in bad["error"]
    assert "3 explained, 1 errors" in result.output and "broken.jpg" in result.output


def test_a_folder_of_sub_folders_suggests_recursive_before_loading(nested: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "inner").mkdir(parents=True)
    result = runner.invoke(app, ["explain", str(empty), "-m", str(tmp_path / "no-such-model")])
    assert result.exit_code == 2
    assert "0 images found" in result.output and "--recursive" in result.output


def test_missing_inputs_exit_2_before_loading(tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", str(tmp_path / "nope.jpg"), "-m", str(tmp_path / "no-such-model")])
    assert result.exit_code == 2 and "No such file or folder" in result.output


def test_without_grad_cam_it_fails_once_with_the_extra_before_loading(
    nested: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("pytorch_grad_cam") else real(name, *a))
    result = runner.invoke(app, ["explain", str(nested), "-o", str(tmp_path / "out"),
                                 "-m", str(tmp_path / "no-such-model")], env={"COLUMNS": "300"})
    assert result.exit_code == 4, result.output
    assert result.output.count("pip install 'imgsent[explain]'") == 1
    assert result.output.count("error:") == 1
    assert not (tmp_path / "out").exists()
