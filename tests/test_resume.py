"""Resume: skipping done rows, torn lines, and refusing rows that would mean something else."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.errors import ResumeMismatchError
from imgsent.resume import RunRecord, check_record, path_key, read_resume_state
from imgsent.results import detect_format
from tests.conftest import classify_cli as _classify
from tests.conftest import csv_rows as _rows
from tests.conftest import classify_until_rows, make_photo, many_photos
from tests.test_reliability import _assert_only_last_line_torn, _cli_rows, _photos, _wait_for_lines

runner = CliRunner()


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


@pytest.mark.slow
def test_sigkill_then_resume_holds_every_image_exactly_once(tiny_model_dir, tmp_path):
    folder = many_photos(tmp_path / "many")
    out = tmp_path / "out.csv"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc, cmd = classify_until_rows(tiny_model_dir, folder, out, workers=1, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
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


@pytest.mark.slow
def test_sigkill_classify_jsonl_then_resume(tiny_model_dir, tmp_path) -> None:
    folder = tmp_path / "many"
    _photos(folder, 200)
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "imgsent", "classify", str(folder), "-o", str(out), "-m", str(tiny_model_dir),
           "--device", "cpu", "-b", "1", "-w", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for_lines(out, 15, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before the kill"
    _assert_only_last_line_torn(out)
    written = out.read_bytes().count(b"\n")
    assert 0 < written < 200
    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = _cli_rows(out, "jsonl")
    assert len(rows) == 200 and len({r["path"] for r in rows}) == 200
    assert all(r["label"] in ("negative", "neutral", "positive") for r in rows)


def test_path_key_folds_spellings(tmp_path):
    assert path_key("photos/./a.jpg", str(tmp_path)) == path_key(str(tmp_path / "photos" / "a.jpg"), "/elsewhere")


def test_sniff_format(tmp_path):
    from imgsent.errors import ResultsFileError

    (tmp_path / "a").write_text('{"path": "x"}\n')
    (tmp_path / "b").write_text("path,label\nx,positive\n")
    (tmp_path / "c").write_text("hello\n")
    assert [detect_format((tmp_path / n).read_bytes()) for n in "ab"] == ["jsonl", "csv"]
    with pytest.raises(ResultsFileError, match="unrecognised format"):
        detect_format((tmp_path / "c").read_bytes())
    with pytest.raises(ResumeMismatchError, match="unrecognised format"):
        read_resume_state(tmp_path / "c", "csv")


def test_check_record_lists_every_difference():
    old = RunRecord("csv", "default", None, "float32", False, "/d", "0.1.0", 0.0, "torch")
    new = dataclasses.replace(old, model="org/other", binary=True)
    with pytest.raises(ResumeMismatchError, match=r"model: 'default' in the file, 'org/other' in this run; binary"):
        check_record(old, new, output="out.csv", force=False)
    check_record(old, new, output="out.csv", force=True)



@pytest.mark.parametrize(
    ("option", "value", "difference"),
    [("--min-confidence", "0.6", "min_confidence: 0.0 in the file, 0.6 in this run"),
     ("--backend", "onnxruntime", "engine: 'torch' in the file, 'onnxruntime' in this run")],
)
def test_resume_refuses_another_min_confidence_or_engine(tiny_model_dir, photo_dir, tmp_path, option, value, difference):
    if value == "onnxruntime":
        pytest.importorskip("onnxruntime")
    out = tmp_path / "out.csv"
    assert _classify(tiny_model_dir, photo_dir / "a.jpg", "-o", out, "--backend", "torch").exit_code == 0
    record = json.loads((tmp_path / "out.csv.imgsent.json").read_text())
    assert record["min_confidence"] == 0.0 and record["engine"] == "torch"
    before = out.read_bytes()
    args = [photo_dir, "-o", out, "--resume", "--backend", "torch", option, value]
    result = _classify(tiny_model_dir, *args)
    assert result.exit_code == 2, result.output
    fix = "--min-confidence 0.0" if option == "--min-confidence" else "--backend torch"
    assert difference in result.output and f"Rerun with {fix} to match the file" in result.output
    assert "--force" in result.output and len(result.output.strip().splitlines()) == 1
    assert out.read_bytes() == before
    forced = _classify(tiny_model_dir, *args, "--force")
    assert forced.exit_code == 0, forced.output
    assert len(_rows(out)) == 6


def test_records_of_older_versions_still_resume(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out.csv"
    assert _classify(tiny_model_dir, photo_dir / "a.jpg", "-o", out).exit_code == 0
    sidecar = tmp_path / "out.csv.imgsent.json"
    old = {k: v for k, v in json.loads(sidecar.read_text()).items() if k not in ("min_confidence", "engine")}
    sidecar.write_text(json.dumps({**old, "a_later_field": 1}))  # and one this version does not know
    result = _classify(tiny_model_dir, photo_dir, "-o", out, "--resume")
    assert result.exit_code == 0, result.output
    assert len(_rows(out)) == 6


def test_a_broken_sidecar_stops_the_resume(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out.csv"
    assert _classify(tiny_model_dir, photo_dir / "a.jpg", "-o", out).exit_code == 0
    (tmp_path / "out.csv.imgsent.json").write_text("{not json")
    result = _classify(tiny_model_dir, photo_dir, "-o", out, "--resume")
    assert result.exit_code == 2 and "is not a valid imgsent run record" in result.output


def test_the_bundled_model_records_its_release_as_revision(photo_dir, tmp_path):
    import imgsent

    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["classify", str(photo_dir / "a.jpg"), "-o", str(out), "--device", "cpu", "-w", "0"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out.csv.imgsent.json").read_text())
    assert record["revision"] == f"bundled with imgsent {imgsent.__version__}" and record["engine"]


def test_min_confidence_and_binary_are_checked_before_the_model_loads(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out.csv"
    assert _classify(tiny_model_dir, photo_dir / "a.jpg", "-o", out).exit_code == 0
    before = out.read_bytes()
    args = ["classify", str(photo_dir), "-o", str(out), "--resume", "-m", "./no/such/model"]
    result = runner.invoke(app, [*args, "--binary", "--min-confidence", "0.5"])
    assert result.exit_code == 2, result.output
    assert "binary: False in the file, True in this run; min_confidence: 0.0 in the file, 0.5 in this run" in result.output
    assert "Rerun with no --binary and --min-confidence 0.0 to match the file" in result.output
    assert out.read_bytes() == before
    assert runner.invoke(app, [*args, "--binary", "--force"]).exit_code == 1  # forced: on to the (missing) model
