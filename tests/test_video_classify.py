"""`imgsent classify` over folders with videos and animations: rows, frame rows, resume, shards, merge, report."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgsent.classify import classify_files, plan_classify
from imgsent.cli.app import app
from imgsent.merge import merge_parts
from imgsent.predictor import Predictor
from imgsent.report import write_report
from imgsent.report.results import read_results
from tests.video_clips import make_audio_only, make_clip, make_gif

pytest.importorskip("av", reason="needs the video extra: pip install 'imgsent[video]'")
runner = CliRunner()


@pytest.fixture
def media(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    shutil.copy("examples/images/coffee_cup.jpg", folder / "coffee_cup.jpg")
    make_clip(folder / "pan.mp4", count=48, gop=12)
    make_gif(folder / "anim.gif", [100] * 6)
    make_audio_only(folder / "voice.m4v")
    return folder


@pytest.fixture(scope="module")
def predictor(tiny_model_dir: Path) -> Predictor:
    return Predictor.from_pretrained(tiny_model_dir, device="cpu", dtype="float32", backend="torch")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_cli_classifies_videos_with_frame_rows(media: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["classify", str(media), "-o", str(out), "-m", str(tiny_model_dir), "--device", "cpu",
                                 "-w", "0", "--frames", "4", "--frame-rows"])
    assert result.exit_code == 3, result.output  # the audio-only file is an error row
    rows = _rows(out)
    assert list(rows[0]) == ["path", "label", "confidence", "negative", "neutral", "positive", "error", "frames", "time"]
    by_path = {row["path"]: row for row in rows}
    video = by_path[str(media / "pan.mp4")]
    frames = [row for row in rows if row["path"].startswith(str(media / "pan.mp4") + "#t=")]
    assert video["frames"] == "4" and len(frames) == 4 and video["time"] == ""
    assert [float(f["time"]) for f in frames] == pytest.approx([0.25, 0.75, 1.25, 1.75])
    for name in ("negative", "neutral", "positive"):  # the file's row is the mean of its frame rows
        assert float(video[name]) == pytest.approx(sum(float(f[name]) for f in frames) / 4, abs=2e-6)
    assert by_path[str(media / "anim.gif")]["frames"] == "4"
    assert by_path[str(media / "coffee_cup.jpg")]["frames"] == ""
    assert "no video stream (streams: audio)" in by_path[str(media / "voice.m4v")]["error"]
    assert rows.index(frames[-1]) < rows.index(video)  # a file's frames are written before it
    assert "3 classified" in result.output and "1 errors" in result.output


def test_jsonl_and_plain_image_runs_keep_their_columns(media: Path, predictor: Predictor, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    classify_files(predictor, [media], output=out, fmt="jsonl", workers=0, frames=2)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(list(row)[-1] == "frames" for row in rows) and {row["frames"] for row in rows} == {None, 2}
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy("examples/images/coffee_cup.jpg", photos)
    classify_files(predictor, [photos], output=tmp_path / "photos.csv", workers=0)
    assert (tmp_path / "photos.csv").read_text().splitlines()[0] == "path,label,confidence,negative,neutral,positive,error"


def test_resume_never_writes_a_frame_row_twice(media: Path, predictor: Predictor, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    classify_files(predictor, [media], output=out, workers=0, frames=3, frame_rows=True)
    full = out.read_text().splitlines()
    video = str(media / "pan.mp4")
    # a run killed after two of the video's frame rows, before its own row
    kept = [line for line in full if not line.startswith(video) or line.startswith(video + "#t=0.333")
            or line.startswith(video + "#t=1,")]
    out.write_text("\n".join(kept) + "\n")
    assert len(kept) == len(full) - 2
    summary = classify_files(predictor, [media], output=out, workers=0, frames=3, frame_rows=True, mode="resume")
    assert summary.skipped == 3 and summary.classified == 1
    again = out.read_text().splitlines()
    assert sorted(again) == sorted(full) and len(set(again)) == len(again)


def test_shards_merge_back_with_frames_in_listing_order(media: Path, predictor: Predictor, tmp_path: Path) -> None:
    from imgsent.shard import Shard

    parts = [tmp_path / f"part{k}.csv" for k in range(2)]
    for k, part in enumerate(parts):
        classify_files(predictor, [media], output=part, workers=0, frames=2, frame_rows=True, shard=Shard(k, 2))
    assert _rows(parts[0])[0].keys() == _rows(parts[1])[0].keys() if _rows(parts[1]) else True
    merge_parts(tmp_path / "all.csv", parts, inputs=[media])
    merged_rows = _rows(tmp_path / "all.csv")
    assert list(merged_rows[0])[-2:] == ["frames", "time"]  # the parts' optional columns survive the merge
    assert {row["time"] for row in merged_rows if "pan.mp4#t=" in row["path"]} == {"0.5", "1.5"}
    merged = [row["path"] for row in merged_rows]
    files = [p for p in merged if "#t=" not in p]
    assert files == sorted(files) and len(files) == 4
    video = str(media / "pan.mp4")
    at = merged.index(video)
    assert merged[at - 2:at] == [f"{video}#t=0.5", f"{video}#t=1.5"]


def test_report_has_a_filmstrip_and_plot_per_video(media: Path, predictor: Predictor, tmp_path: Path) -> None:
    pytest.importorskip("jinja2")
    out = tmp_path / "out.csv"
    classify_files(predictor, [media], output=out, workers=0, frames=3, frame_rows=True)
    rows = read_results(out)
    assert {r.frames for r in rows if r.path.endswith("pan.mp4")} == {3}
    assert sorted(r.time for r in rows if r.time is not None and "pan.mp4" in r.path) == pytest.approx([1 / 3, 1, 5 / 3], abs=1e-3)
    summary = write_report(out, tmp_path / "report.html", images_root="/")
    html = (tmp_path / "report.html").read_text()
    assert summary.rows == 4 and summary.errors == 1  # frame rows are not counted as files
    assert 'id="videos"' in html and html.count('class="strip"') == 2 and html.count("<polyline") == 2
    assert html.count("frame not readable") == 0 and "P(positive) over time" in html
    assert "#t=1" in html


def test_missing_pyav_is_one_hint_and_error_rows(media: Path, tiny_model_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "av" else real(name, *a))
    make_clip(media / "second.mov", count=4)
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["classify", str(media), "-o", str(out), "-m", str(tiny_model_dir), "--device", "cpu",
                                 "-w", "0"])
    assert result.exit_code == 3
    assert result.output.count("pip install 'imgsent[video]'") == 1
    assert "3 video file(s) need PyAV" in result.output
    rows = {row["path"]: row for row in _rows(out)}
    assert "imgsent[video]" in rows[str(media / "pan.mp4")]["error"]
    assert rows[str(media / "anim.gif")]["error"] == ""  # animations need only Pillow


def test_the_plan_counts_videos_and_chooses_the_frames_column(media: Path, tmp_path: Path) -> None:
    plan = plan_classify([media])
    assert plan.videos == 2 and len(plan.files) == 4 and plan.media
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy("examples/images/coffee_cup.jpg", photos)
    assert not plan_classify([photos]).media


@pytest.mark.parametrize(("first", "second", "named"), [
    (["--frames", "3"], ["--frames", "4"], "frames: 3 in the file, 4 in this run"),
    (["--frame-rows"], [], "frame_rows: True in the file, False in this run"),
])
def test_resume_with_other_video_options_is_refused_before_the_model_loads(
    media: Path, tiny_model_dir: Path, tmp_path: Path, first: list[str], second: list[str], named: str,
) -> None:
    out = tmp_path / "out.csv"
    args = ["classify", str(media), "-o", str(out), "-m", str(tiny_model_dir), "--device", "cpu", "-w", "0"]
    runner.invoke(app, [*args, *first])
    (media / "more.jpg").write_bytes(Path("examples/images/coffee_cup.jpg").read_bytes())
    before = out.read_bytes()
    result = runner.invoke(app, [*args, *second, "--resume"])
    assert result.exit_code == 2, result.output
    assert named in result.output and "Nothing was changed" in result.output
    fix = "--frames 3" if "--frames" in first else "--frame-rows"
    assert f"Rerun with {fix} to match the file" in " ".join(result.output.split())
    assert out.read_bytes() == before


def test_report_without_frame_rows_hints_and_shows_a_video_frame(media: Path, predictor: Predictor, tmp_path: Path) -> None:
    pytest.importorskip("jinja2")
    out = tmp_path / "out.jsonl"
    classify_files(predictor, [media], output=out, fmt="jsonl", workers=0, frames=2)
    write_report(out, tmp_path / "report.html", images_root="/")
    html = (tmp_path / "report.html").read_text()
    assert "Classify with <code>--frame-rows</code>" in html and 'class="strip"' not in html
    assert "image not readable" not in html  # the video's thumbnail in its label's grid is its middle frame
    assert '<img src="data:image/jpeg;base64,' in html and f'alt="{media / "pan.mp4"}"' in html
