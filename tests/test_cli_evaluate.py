"""``imgsent evaluate`` (imgsent/cli/evaluate.py): honest exit codes; n/a and null when nothing was measured."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from imgsent.cli.app import app
from tests.conftest import make_photo

runner = CliRunner()


def _evaluate(model_dir: Path, labels: Path, *args: str):
    return runner.invoke(app, ["evaluate", str(labels), "-m", str(model_dir), "--device", "cpu", "-w", "0", *args],
                         env={"COLUMNS": "200"})


def test_no_readable_image_exits_1_with_n_a_and_null(tiny_model_dir: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("image,label\nmissing1.jpg,positive\nmissing2.jpg,negative\n")
    out = tmp_path / "m.json"
    result = _evaluate(tiny_model_dir, labels, "--json", str(out))
    assert result.exit_code == 1, result.output
    assert "n/a" in result.output and "0.0%" not in result.output
    assert "nothing was measured: none of the 2 images could be read" in result.output
    report = json.loads(out.read_text())
    assert report["subsets"][0] == {**report["subsets"][0], "n": 0, "accuracy": None, "macro_f1": None}
    assert len(report["errors"]) == 2


def test_some_unreadable_images_exit_3(tiny_model_dir: Path, tmp_path: Path) -> None:
    make_photo(tmp_path / "ok.jpg")
    labels = tmp_path / "labels.csv"
    labels.write_text("image,label\nok.jpg,positive\nmissing.jpg,negative\n")
    result = _evaluate(tiny_model_dir, labels, "--json", "-")
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert report["subsets"][0]["n"] == 1 and report["subsets"][0]["accuracy"] in (0.0, 1.0)


def test_only_neutral_rows_under_the_binary_protocol_measure_nothing(tmp_path: Path) -> None:
    make_photo(tmp_path / "a.jpg")
    labels = tmp_path / "labels.csv"
    labels.write_text("image,label\na.jpg,neutral\n")
    result = runner.invoke(app, ["evaluate", str(labels), "--device", "cpu", "-w", "0"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output  # the bundled model never predicts neutral: binary protocol
    assert "all 1 rows are neutral, which the binary protocol skips" in result.output
