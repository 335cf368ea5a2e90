"""Run every script in examples/ in a subprocess against a tiny random-weight model."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from imgsent.outputs import COLUMNS
from tests.conftest import REPO, make_photo, shared_data_or_skip

EXAMPLES = REPO / "examples"


def run_example(name: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>`` with this interpreter from the repository root."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
    )


def photos(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [make_photo(folder / f"img{i}.jpg", seed=i, size=(40 + 3 * i, 32)) for i in range(count)]


def test_every_example_has_a_test():
    tested = {"predict_folder_to_csv.py", "iterate_large_folder.py", "evaluate_labels.py", "distill_tiny.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


@pytest.mark.slow
def test_predict_folder_to_csv(tiny_model_dir, tmp_path):
    folder = tmp_path / "photos"
    photos(folder, 4)
    (folder / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out.csv"
    result = run_example("predict_folder_to_csv.py", str(folder), "-o", str(out), "--model", str(tiny_model_dir),
                         "--workers", "0", "--device", "cpu")
    assert result.returncode == 3, result.stderr  # error rows -> exit code 3, like `imgsent classify`
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == 5
    bad = [r for r in rows if r["error"]]
    assert [Path(r["path"]).name for r in bad] == ["broken.jpg"] and bad[0]["label"] == ""
    good = [r for r in rows if not r["error"]]
    assert all(r["label"] in ("negative", "neutral", "positive") for r in good)
    assert all(abs(sum(float(r[k]) for k in ("negative", "neutral", "positive")) - 1) < 1e-4 for r in good)


@pytest.mark.slow
def test_iterate_large_folder(tiny_model_dir, tmp_path):
    photos(tmp_path / "a", 3)
    photos(tmp_path / "a" / "nested", 2)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    result = run_example("iterate_large_folder.py", str(tmp_path / "a"), "--model", str(tiny_model_dir),
                         "--every", "2", "--workers", "0", "--binary")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("2 images") and lines[1].startswith("4 images")
    assert lines[-1].startswith("done: 5 images")
    assert "neutral" not in lines[-1]  # --binary never predicts neutral


@pytest.mark.slow
def test_evaluate_labels(tiny_model_dir, tmp_path):
    images = photos(tmp_path / "images", 6)
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "label", "agree"])
        for i, image in enumerate(images):
            writer.writerow([image.name, "positive" if i % 2 else "negative", 3 + i % 3])
    report = tmp_path / "report.json"
    result = run_example("evaluate_labels.py", str(labels), "--model", str(tiny_model_dir), "--workers", "0",
                         "--json", str(report))
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    subsets = {s["name"]: s for s in data["subsets"]}
    assert set(subsets) == {"all", "agree>=3", "agree>=4", "agree>=5"}
    assert subsets["all"]["n"] == 6 and subsets["agree>=5"]["n"] == 2
    assert "agree>=5" in result.stdout


@pytest.mark.slow
@pytest.mark.shared_data
def test_distill_tiny(tmp_path):
    corpus = shared_data_or_skip("twitter1-dev", "corpus.jsonl")
    pytest.importorskip("vaderSentiment", reason="needs the distill extra: pip install 'imgsent[distill]'")
    out = tmp_path / "run"
    result = run_example("distill_tiny.py", "--corpus", str(corpus), "--out", str(out), "--posts", "60", "--steps", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "train" / "model" / "config.json").is_file()
    assert (out / "train" / "model" / "model.safetensors").is_file()
    assert (out / "select" / "train.jsonl").is_file()
    assert "predict:" in result.stdout
