from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgsent.cli.app import app
from tests.conftest import make_photo

runner = CliRunner()


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_help_shows_examples_and_exit_codes():
    result = runner.invoke(app, ["classify", "--help"])
    assert result.exit_code == 0
    assert "imgsent classify photos/ -o out.csv" in result.output
    assert "Exit codes" in result.output


def test_classify_folder_to_csv(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["classify", str(photo_dir), "-o", str(out), "-m", str(tiny_model_dir), "--device", "cpu", "-w", "1"])
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert list(rows[0]) == ["path", "label", "confidence", "negative", "neutral", "positive", "error"]
    assert len(rows) == 6
    assert all(r["label"] in ("negative", "neutral", "positive") and not r["error"] for r in rows)
    assert "6 classified" in result.output


def test_classify_to_stdout_jsonl(tiny_model_dir, photo_dir):
    result = runner.invoke(
        app, ["classify", str(photo_dir / "a.jpg"), "--format", "jsonl", "-m", str(tiny_model_dir), "--device", "cpu"]
    )
    assert result.exit_code == 0
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("{")][0]
    row = json.loads(line)
    assert row["path"].endswith("a.jpg") and row["error"] is None


def test_bad_files_give_error_rows_and_exit_code_3(tiny_model_dir, photo_dir, tmp_path):
    (photo_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["classify", str(photo_dir), "-o", str(out), "-m", str(tiny_model_dir), "--device", "cpu"])
    assert result.exit_code == 3, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7
    broken = [r for r in rows if r["path"].endswith("broken.jpg")][0]
    assert broken["label"] is None and "broken.jpg" in broken["error"]


def test_resume_skips_done_rows_and_repairs_a_torn_line(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out.csv"
    args = ["classify", str(photo_dir), "-o", str(out), "-m", str(tiny_model_dir), "--device", "cpu", "-b", "2"]
    assert runner.invoke(app, args).exit_code == 0
    full = _rows(out)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:3]) + lines[3][:10])  # header + 2 rows + a torn row
    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert "2 already in" in result.output and "(resume)" in result.output
    resumed = _rows(out)
    assert sorted(r["path"] for r in resumed) == sorted(r["path"] for r in full)
    assert len(resumed) == len(full)


def test_usage_errors():
    assert runner.invoke(app, ["classify", "x", "--format", "xml"]).exit_code == 2
    result = runner.invoke(app, ["classify", "x", "--resume"])
    assert result.exit_code == 2 and "--resume needs --output" in result.output


def test_unknown_model_is_a_clean_error(photo_dir):
    result = runner.invoke(app, ["classify", str(photo_dir), "-m", "./no/such/folder", "--device", "cpu"])
    assert result.exit_code == 1
    assert "error:" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_sigkill_then_resume_holds_every_image_exactly_once(tiny_model_dir, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        make_photo(folder / f"{i:04d}.png", seed=i, size=(64, 64))
    out = tmp_path / "out.csv"
    cmd = [sys.executable, "-m", "imgsent", "classify", str(folder), "-o", str(out), "-m", str(tiny_model_dir),
           "--device", "cpu", "-b", "4", "-w", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 20):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    written = out.read_text().count("\n") - 1
    assert 0 < written < 300, "the kill must land mid-run"
    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = _rows(out)
    paths = [r["path"] for r in rows]
    assert len(paths) == 300 and len(set(paths)) == 300
    assert all(r["label"] in ("negative", "neutral", "positive") for r in rows)


def _classify(model_dir, *args):
    return runner.invoke(app, ["classify", *map(str, args), "-m", str(model_dir), "--device", "cpu", "-w", "0"])


def test_version():
    import imgsent

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"imgsent {imgsent.__version__}"


def test_help_has_no_bool_metavars_or_braces():
    text = runner.invoke(app, ["classify", "--help"], env={"COLUMNS": "120"}).output
    assert "<bool>" not in text and "{" not in text
    assert "imgsent classify [OPTIONS] PATHS..." in text
    assert "Usage: imgsent evaluate [OPTIONS] LABELS" in runner.invoke(app, ["evaluate", "--help"]).output


def test_missing_input_exits_2_before_loading_and_writes_nothing(tmp_path):
    out = tmp_path / "out.csv"
    # the model does not exist either: the input check must come first
    result = runner.invoke(app, ["classify", str(tmp_path / "nope.jpg"), "-o", str(out), "-m", "./no/such/model"])
    assert result.exit_code == 2, result.output
    assert "No such file or folder" in result.output and "nope.jpg" in result.output
    assert not out.exists()


def test_folder_with_only_subfolders_suggests_recursive(tmp_path):
    (tmp_path / "top" / "inner").mkdir(parents=True)
    make_photo(tmp_path / "top" / "inner" / "a.jpg")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["classify", str(tmp_path / "top"), "-o", str(out), "-m", "./no/such/model"])
    assert result.exit_code == 2
    assert "0 images found" in result.output and "--recursive" in result.output
    assert not out.exists()


def test_quoted_glob_expands(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out.csv"
    result = _classify(tiny_model_dir, photo_dir / "[ab].*", "-o", out)
    assert result.exit_code == 0, result.output
    assert sorted(Path(r["path"]).name for r in _rows(out)) == ["a.jpg", "b.png"]


@pytest.mark.parametrize(("option", "value"), [("--device", "tpu"), ("--dtype", "float64"), ("--device", "cuda:7")])
def test_bad_device_or_dtype_exits_2_before_loading(photo_dir, option, value):
    import torch

    if value.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 CUDA devices")
    result = runner.invoke(app, ["classify", str(photo_dir), option, value, "-m", "./no/such/model"])
    assert result.exit_code == 2, result.output
    assert value in result.output


def test_header_and_summary(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out.csv"
    result = _classify(tiny_model_dir, photo_dir, "-o", out)
    assert result.exit_code == 0
    header = result.stderr.splitlines()[0]
    for part in ("model ", "revision -", "device cpu", "dtype ", "engine ", "6 images", str(out)):
        assert part in header, header
    assert "binary in practice" not in header  # the tiny model has no training provenance
    summary = result.stderr.splitlines()[-1]
    assert summary.startswith("Done in ") and "resume" not in summary and str(out) in summary


def test_default_model_header_says_binary(photo_dir):
    result = runner.invoke(app, ["classify", str(photo_dir / "a.jpg"), "--device", "cpu", "-w", "0"])
    assert result.exit_code == 0, result.output
    assert "model default (binary in practice: never predicts neutral)" in result.stderr


def test_summary_does_not_wrap_when_not_a_terminal(tiny_model_dir, photo_dir, tmp_path):
    long_name = tmp_path / ("a-rather-long-output-folder-name-" * 3) / "out.csv"
    result = _classify(tiny_model_dir, photo_dir, "-o", long_name)
    assert result.exit_code == 0
    assert any(line.startswith("Done in ") and line.endswith(str(long_name)) for line in result.stderr.splitlines())


def test_resume_refuses_a_format_mismatch_and_leaves_the_file_untouched(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out.jsonl"
    assert _classify(tiny_model_dir, photo_dir / "a.jpg", "-o", out).exit_code == 0
    before = out.read_bytes()
    result = _classify(tiny_model_dir, photo_dir, "-o", out, "--resume", "--format", "csv")
    assert result.exit_code == 2
    assert "holds JSONL rows" in result.output and "--format jsonl" in result.output
    assert out.read_bytes() == before


def test_resume_matches_relative_and_absolute_spellings(tiny_model_dir, photo_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(photo_dir.parent)
    out = tmp_path / "out.csv"
    assert _classify(tiny_model_dir, "photos", "-o", out).exit_code == 0
    result = _classify(tiny_model_dir, f"{photo_dir}/", "-o", out, "--resume")
    assert result.exit_code == 0, result.output
    assert len(_rows(out)) == 6
    assert "Nothing to do: all 6 images are already in" in result.stderr


def test_resume_warns_loudly_when_nothing_matches(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out.csv"
    assert _classify(tiny_model_dir, photo_dir / "a.jpg", "-o", out).exit_code == 0
    other = tmp_path / "other"
    other.mkdir()
    make_photo(other / "z.jpg")
    result = _classify(tiny_model_dir, other, "-o", out, "--resume")
    assert result.exit_code == 0
    assert "WARNING: --resume found 1 rows" in result.stderr and "none of them match" in result.stderr
    assert len(_rows(out)) == 2


def test_resume_refuses_another_dtype_unless_forced(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out.csv"
    assert _classify(tiny_model_dir, photo_dir / "a.jpg", "-o", out, "--dtype", "float32").exit_code == 0
    record = json.loads((tmp_path / "out.csv.imgsent.json").read_text())
    assert record["model"] == str(tiny_model_dir) and record["dtype"] == "float32" and record["format"] == "csv"
    before = out.read_bytes()
    result = _classify(tiny_model_dir, photo_dir, "-o", out, "--resume", "--dtype", "bfloat16")
    assert result.exit_code == 2
    assert "dtype: 'float32' in the file, 'bfloat16' in this run" in result.output and "--force" in result.output
    assert out.read_bytes() == before
    result = _classify(tiny_model_dir, photo_dir, "-o", out, "--resume", "--dtype", "bfloat16", "--force")
    assert result.exit_code == 0, result.output
    assert len(_rows(out)) == 6


def test_output_stays_readable_by_pandas(tiny_model_dir, photo_dir, tmp_path):
    pd = pytest.importorskip("pandas")
    assert _classify(tiny_model_dir, photo_dir, "-o", tmp_path / "out.csv").exit_code == 0
    assert _classify(tiny_model_dir, photo_dir, "-o", tmp_path / "out.jsonl").exit_code == 0
    assert len(pd.read_csv(tmp_path / "out.csv")) == 6
    assert len(pd.read_json(tmp_path / "out.jsonl", lines=True)) == 6


def test_progress_bar_shows_total_rate_elapsed_and_eta(tiny_model_dir, photo_dir, tmp_path):
    result = _classify(tiny_model_dir, photo_dir, "-o", tmp_path / "out.csv", "--progress", "-b", "2")
    assert result.exit_code == 0
    assert "6/6" in result.stderr and "img/s" in result.stderr
    assert "elapsed" in result.stderr and "ETA" in result.stderr
    assert "/?" not in result.stderr


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


@pytest.mark.slow
def test_ctrl_c_prints_safe_rows_and_the_resume_command(tiny_model_dir, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        make_photo(folder / f"{i:04d}.png", seed=i, size=(64, 64))
    out = tmp_path / "out.csv"
    cmd = [sys.executable, "-m", "imgsent", "classify", str(folder), "-o", str(out), "-m", str(tiny_model_dir),
           "--device", "cpu", "-b", "4", "-w", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 20):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    safe = int(stderr.split("Interrupted. ")[1].split(" rows")[0])
    assert safe == len(_rows(out))
    command = stderr.split("Finish the run with:\n")[1].strip()
    assert command.startswith("imgsent classify ") and command.endswith("--resume") and str(folder) in command
