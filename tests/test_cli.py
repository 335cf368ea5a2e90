from __future__ import annotations

import json

from typer.testing import CliRunner

from imgsent.cli.app import app

runner = CliRunner()


def test_version():
    import imgsent

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"imgsent {imgsent.__version__}"


def test_help_has_no_bool_metavars_or_braces():
    text = runner.invoke(app, ["classify", "--help"], env={"COLUMNS": "120"}).output
    assert "<bool>" not in text and "{" not in text
    assert "imgsent classify [OPTIONS] PATHS..." in text
    assert "Usage: imgsent evaluate [OPTIONS] LABELS" in runner.invoke(app, ["evaluate", "--help"]).output


def test_download_offline_gives_a_useful_hint(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = runner.invoke(app, ["download", "some/repo"])
    assert result.exit_code == 1
    assert "HF_HUB_OFFLINE is set" in result.output and "copy the cache folder" in result.output


def test_models_says_the_default_is_binary_in_practice(tmp_path):
    result = runner.invoke(app, ["models", "--cache-dir", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "binary in practice" in result.output


def _labels_csv(photo_dir, tmp_path, labels):
    path = tmp_path / "labels.csv"
    names = sorted(p.name for p in photo_dir.iterdir())
    path.write_text("image,label\n" + "".join(f"photos/{n},{lab}\n" for n, lab in zip(names, labels)))
    return path


def test_evaluate_three_class_labels(tiny_model_dir, photo_dir, tmp_path):
    labels = _labels_csv(photo_dir, tmp_path, ["negative", "neutral", "positive"] * 2)
    out = tmp_path / "m.json"
    result = runner.invoke(
        app, ["evaluate", str(labels), "--model", str(tiny_model_dir), "--device", "cpu", "-w", "0", "--json", str(out)],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["protocol"] == "3-class" and report["subsets"][0]["n"] == 6
    assert set(report["subsets"][0]["confusion"]) == {"negative", "neutral", "positive"}
    assert "…" not in result.output and "3-class protocol" in result.output


def test_evaluate_default_model_uses_binary_protocol_and_counts_skipped_neutral(photo_dir, tmp_path):
    labels = _labels_csv(photo_dir, tmp_path, ["negative", "neutral", "positive"] * 2)
    out = tmp_path / "m.json"
    result = runner.invoke(app, ["evaluate", str(labels), "--device", "cpu", "-w", "0", "--json", str(out), "--progress"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["protocol"] == "binary" and report["skipped_neutral"] == 2 and report["subsets"][0]["n"] == 4
    assert "2 neutral rows skipped" in result.output and "4/4" in result.stderr


