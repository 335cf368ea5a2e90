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
    assert "2 skipped" in result.output
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
