"""Ray Data integration on a real local cluster (``ray.init(num_cpus=2)``), compared with ``imgsent classify``."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.errors import InvalidConfigError
from tests.conftest import make_photo

ray = pytest.importorskip("ray", reason="needs the ray extra: pip install 'imgsent[ray]'")
imgsent_ray = pytest.importorskip("imgsent.integrations.ray")

pytestmark = pytest.mark.slow  # starting a local cluster and its actors takes tens of seconds on 2 cores


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(9):
        make_photo(folder / f"p{i}.png", seed=i, size=(30 + 3 * i, 26))
    (folder / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def _csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


def _assert_same(ray_rows: list[dict], cli_rows: dict[str, dict[str, str]]) -> None:
    assert sorted(r["path"] for r in ray_rows) == sorted(cli_rows)
    for row in ray_rows:
        expected = cli_rows[row["path"]]
        assert list(row)[:7] == ["path", "label", "confidence", "negative", "neutral", "positive", "error"]
        assert (row["label"] or "") == expected["label"]
        assert bool(row["error"]) == bool(expected["error"])
        for name in ("negative", "neutral", "positive"):
            if expected[name]:
                assert row[name] == pytest.approx(float(expected[name]), abs=1e-4)
            else:
                assert row[name] is None


def test_ray_rows_equal_classify(cluster, tiny_model_dir: Path, images: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.csv"
    result = CliRunner().invoke(
        app, ["classify", str(images), "-o", str(out), "-m", str(tiny_model_dir), "--device", "cpu", "--dtype", "float32"]
    )
    assert result.exit_code == 3, result.output  # finished, one error row
    cli_rows = _csv(out)

    paths = ray.data.from_items([{"path": p} for p in sorted(cli_rows)])
    rows = imgsent_ray.classify(
        paths, str(tiny_model_dir), device="cpu", dtype="float32", batch_size=4, concurrency=2
    ).take_all()
    _assert_same(rows, cli_rows)
    bad = next(r for r in rows if r["path"].endswith("truncated.jpg"))
    assert bad["label"] is None and "truncated.jpg" in bad["error"]

    raw = ray.data.read_binary_files(str(images), include_paths=True)
    from_bytes = imgsent_ray.classify(raw, str(tiny_model_dir), column="bytes", device="cpu", dtype="float32").take_all()
    _assert_same(from_bytes, cli_rows)


def test_label_matches_the_teacher_and_flags_empty_texts(cluster) -> None:
    pytest.importorskip("vaderSentiment", reason="needs the distill extra")
    from imgsent.distill.teacher import VaderTeacher

    texts = ["What a wonderful sunny day!", "This is the worst service ever.", "", "A chair in a room."]
    posts = ray.data.from_items([{"id": str(i), "text": t, "images": [f"{i}.jpg"]} for i, t in enumerate(texts)])
    rows = sorted(imgsent_ray.label(posts, "vader", batch_size=2).take_all(), key=lambda r: r["id"])
    expected = VaderTeacher().predict_proba([t for t in texts if t])
    good = [r for r in rows if r["text"]]
    for row, probs in zip(good, expected):
        assert [row["negative"], row["neutral"], row["positive"]] == pytest.approx(list(probs), abs=1e-9)
        assert row["error"] is None and row["images"] == [f"{row['id']}.jpg"]
    assert [r["label"] for r in good][:2] == ["positive", "negative"]
    empty = rows[2]
    assert empty["label"] is None and empty["positive"] is None and "empty" in empty["error"]


def test_options_and_columns_are_checked_before_running(cluster) -> None:
    paths = ray.data.from_items([{"file": "a.jpg"}])
    with pytest.raises(InvalidConfigError, match="no 'path' column; its columns are \\['file'\\]"):
        imgsent_ray.classify(paths).materialize()
    with pytest.raises(InvalidConfigError, match="concurrency=0"):
        imgsent_ray.classify(paths, column="file", concurrency=0)


def test_ray_videos_and_frame_rows_equal_classify(cluster, tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("av", reason="needs the video extra")
    from tests.video_clips import make_clip, make_gif

    folder = tmp_path / "media"
    folder.mkdir()
    make_clip(folder / "pan.mp4", count=24)
    make_gif(folder / "anim.gif", [100] * 5)
    make_photo(folder / "still.png", seed=1)
    out = tmp_path / "cli.csv"
    result = CliRunner().invoke(app, ["classify", str(folder), "-o", str(out), "-m", str(tiny_model_dir), "--device", "cpu",
                                      "--dtype", "float32", "--frames", "3", "--frame-rows"])
    assert result.exit_code == 0, result.output
    cli_rows = _csv(out)
    files = ray.data.from_items([{"path": str(p)} for p in sorted(folder.iterdir())])
    rows = imgsent_ray.classify(files, str(tiny_model_dir), device="cpu", dtype="float32", frames=3,
                                frame_rows=True).take_all()
    _assert_same(rows, cli_rows)
    by_path = {row["path"]: row for row in rows}
    assert by_path[str(folder / "pan.mp4")]["frames"] == 3 and by_path[str(folder / "still.png")]["frames"] is None
    frame = by_path[f"{folder / 'pan.mp4'}#t=0.5"]
    assert frame["time"] == 0.5 and float(cli_rows[frame["path"]]["time"]) == 0.5
