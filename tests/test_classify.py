"""``imgsent classify`` and :mod:`imgsent.classify`: the run, its output policy, its header and summary."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.errors import InvalidConfigError, OutputExistsError, OutputFormatError
from tests.conftest import classify_cli as _classify
from tests.conftest import csv_rows as _rows
from tests.conftest import classify_until_rows, make_photo, many_photos
from tests.test_reliability import _cli_rows, _photos, _sabotage

runner = CliRunner()


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


def test_usage_errors():
    assert runner.invoke(app, ["classify", "x", "--format", "xml"]).exit_code == 2
    result = runner.invoke(app, ["classify", "x", "--resume"])
    assert result.exit_code == 2 and "--resume needs --output" in result.output


def test_unknown_model_is_a_clean_error(photo_dir):
    result = runner.invoke(app, ["classify", str(photo_dir), "-m", "./no/such/folder", "--device", "cpu"])
    assert result.exit_code == 1
    assert "error:" in result.output and "Traceback" not in result.output


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


@pytest.mark.slow
def test_ctrl_c_prints_safe_rows_and_the_resume_command(tiny_model_dir, tmp_path):
    folder = many_photos(tmp_path / "many", count=1000)  # long enough that a busy machine still interrupts mid-run
    out = tmp_path / "out.csv"
    proc, _ = classify_until_rows(tiny_model_dir, folder, out, workers=0,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    safe = int(stderr.split("Interrupted. ")[1].split(" rows")[0])
    assert safe == len(_rows(out))
    command = stderr.split("Finish the run with:\n")[1].strip()
    assert command.startswith("imgsent classify ") and command.endswith("--resume") and str(folder) in command


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_classify_file_names_that_are_not_utf8(tiny_model_dir, tmp_path, fmt) -> None:
    from imgsent.classify import classify_files
    from imgsent.predictor import Predictor

    folder = tmp_path / "names"
    folder.mkdir()
    make_photo(folder / "good.png")
    make_photo(Path(os.fsdecode(os.path.join(os.fsencode(folder), b"latin1-caf\xe9.png"))))
    predictor = Predictor.from_pretrained(str(tiny_model_dir), device="cpu")
    out = tmp_path / f"out.{fmt}"
    summary = classify_files(predictor, [folder], output=out, fmt=fmt, workers=0)  # type: ignore[arg-type]
    assert summary.classified == 2
    again = classify_files(predictor, [folder], output=out, fmt=fmt, workers=0, mode="resume")  # type: ignore[arg-type]
    assert again.skipped == 2


def test_files_that_vanish_during_classify_become_error_rows(tiny_model_dir, tmp_path) -> None:
    from imgsent.classify import ClassifyProgress, classify_files
    from imgsent.predictor import Predictor

    predictor = Predictor.from_pretrained(str(tiny_model_dir), device="cpu")
    folder = tmp_path / "live"
    paths = _photos(folder, 12)
    (folder / "sub").mkdir()
    inner = _photos(folder / "sub", 2)
    sabotaged: dict[str, str] = {}

    def after_batch(progress: ClassifyProgress) -> None:
        if progress.done == 2:
            sabotaged.update(_sabotage(paths[6:11]))
            shutil.rmtree(folder / "sub")  # a listed sub-folder disappears before its files are read
            sabotaged.update({path: "no such file" for path in inner})

    out = tmp_path / "out.jsonl"
    summary = classify_files(predictor, [folder], output=out, fmt="jsonl", recursive=True, batch_size=2, workers=0,
                             on_progress=after_batch)
    rows = _cli_rows(out, "jsonl")
    # the folder is scanned once, before the run: every listed file gets a row, and nothing crashes
    assert [r["path"] for r in rows] == paths + inner
    assert summary.errors == 7 and summary.classified == 7
    for row in rows:
        if row["path"] in sabotaged:
            assert sabotaged[row["path"]] in row["error"] and row["label"] is None, row


# ---------------------------------------------------------------------------- never lose a results file


def test_an_existing_output_is_refused_without_overwrite_or_resume(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out.csv"
    assert _classify(tiny_model_dir, photo_dir, "-o", out).exit_code == 0
    before, sidecar = out.read_bytes(), (tmp_path / "out.csv.imgsent.json").read_bytes()
    # the model does not exist: the refusal must come before it is loaded
    result = runner.invoke(app, ["classify", str(photo_dir / "a.jpg"), "-o", str(out), "-m", "./no/such/model"])
    assert result.exit_code == 2, result.output
    assert "already holds results (7 lines)" in result.output
    assert "--resume" in result.output and "--overwrite" in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
    assert out.read_bytes() == before and (tmp_path / "out.csv.imgsent.json").read_bytes() == sidecar


def test_overwrite_replaces_and_an_empty_output_needs_nothing(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"")
    assert _classify(tiny_model_dir, photo_dir, "-o", out).exit_code == 0
    assert len(out.read_text().splitlines()) == 6
    result = _classify(tiny_model_dir, photo_dir / "a.jpg", "-o", out, "--overwrite", "--min-confidence", "0.9")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["a.jpg"]
    assert json.loads((tmp_path / "out.jsonl.imgsent.json").read_text())["min_confidence"] == 0.9


def test_output_policy_usage_errors(tmp_path):
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["classify", "x", "-o", str(out), "--resume", "--overwrite"])
    assert result.exit_code == 2 and "pass one of them" in result.output
    result = runner.invoke(app, ["classify", "x", "--overwrite"])
    assert result.exit_code == 2 and "--overwrite needs --output" in result.output


def test_library_mode_refuses_resumes_and_overwrites(tiny_model_dir, photo_dir, tmp_path):
    from imgsent.classify import classify_files, plan_classify
    from imgsent.predictor import Predictor

    predictor = Predictor.from_pretrained(str(tiny_model_dir), device="cpu", backend="torch")
    out = tmp_path / "out.csv"
    assert classify_files(predictor, [photo_dir / "a.jpg"], output=out, workers=0).classified == 1
    before = out.read_bytes()
    with pytest.raises(OutputExistsError, match=r"out.csv already holds results .*--resume .*--overwrite") as info:
        classify_files(predictor, [photo_dir], output=out, workers=0)
    assert isinstance(info.value, FileExistsError) and out.read_bytes() == before
    again = classify_files(predictor, [photo_dir], output=out, workers=0, mode="resume")
    assert (again.skipped, again.classified, again.resumed_rows) == (1, 5, 1)
    assert classify_files(predictor, [photo_dir / "b.png"], output=out, workers=0, mode="overwrite").classified == 1
    assert len(_rows(out)) == 1
    with pytest.raises(InvalidConfigError, match="mode must be one of new, resume, overwrite, got 'append'"):
        plan_classify([photo_dir], output=out, mode="append")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="needs an output file"):
        plan_classify([photo_dir], mode="resume")


def test_an_unknown_output_extension_is_refused_unless_the_format_is_given(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out.txt"
    result = _classify(tiny_model_dir, photo_dir, "-o", out)
    assert result.exit_code == 2
    assert "'.txt', which names no results format" in result.output and "csv" in result.output and "jsonl" in result.output
    assert not out.exists()
    result = _classify(tiny_model_dir, photo_dir, "-o", out, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert len([json.loads(line) for line in out.read_text().splitlines()]) == 6
    from imgsent.classify import plan_classify

    with pytest.raises(OutputFormatError, match=r"'.tsv', which names no results format.*--format csv or --format jsonl"):
        plan_classify([photo_dir], output=tmp_path / "x.tsv")


def test_help_lists_every_output_column(tiny_model_dir):
    from imgsent.outputs import RESULT_COLUMNS

    text = runner.invoke(app, ["classify", "--help"], env={"COLUMNS": "200"}).output
    for column in RESULT_COLUMNS:
        assert re.search(rf"{column.name}\W+{re.escape(column.help[:20])}", text), column.name
    assert "uncertain" in text and "--overwrite" in text


def test_summary_times_the_whole_command_and_its_rate_is_the_bars(tiny_model_dir, photo_dir, tmp_path, monkeypatch):
    import imgsent.classify as library

    ticks = iter(range(1000))
    monkeypatch.setattr(library, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))  # 1 s per reading
    result = _classify(tiny_model_dir, photo_dir, "-o", tmp_path / "out.csv", "--progress", "-b", "3")
    assert result.exit_code == 0, result.output
    summary = result.stderr.splitlines()[-1]
    # wall time from the process's start (here pytest's, so it may read in minutes), start-up included
    assert re.match(r"Done in (\d+h )?(\d+m )?[0-9.]+s \((\d+h )?(\d+m )?[0-9.]+s start-up and model load\): 6 classified", summary)
    rate = float(re.findall(r"([0-9.]+) images/s over ([0-9.]+)s of classifying", summary)[0][0])
    # the library read its clock at the start and after each of the two batches: 6 images over 2 s
    assert rate == 3.0 and "over 2.0s of classifying" in summary
    assert "3.0 img/s" in result.stderr  # the bar shows the same rate
