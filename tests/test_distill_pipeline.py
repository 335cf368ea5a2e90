from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.distill.pipeline import STAGES, DistillRun
from imgsent.distill.recipe import load_recipe
from imgsent.errors import InvalidConfigError, UnknownArchitectureError

pytest.importorskip("vaderSentiment", reason="needs the distill extra: pip install 'imgsent[distill]'")

HAPPY = "What a wonderful happy sunny day, I love this beautiful great place"
SAD = "This is a terrible awful sad disaster, I hate this horrible ugly mess"


def _corpus(folder: Path, n: int = 24) -> Path:
    (folder / "img").mkdir(parents=True)
    rows = []
    rng = np.random.default_rng(0)
    for i in range(n):
        positive = i % 2 == 0
        base = np.array([230, 200, 40] if positive else [30, 40, 90], dtype=np.int16)
        pixels = np.clip(base + rng.integers(-20, 20, size=(48, 64, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "img" / f"{i}.jpg")
        rows.append({"id": str(i), "text": HAPPY if positive else SAD, "images": [f"img/{i}.jpg"]})
    shutil.copy(folder / "img" / "0.jpg", folder / "img" / "copy_of_0.jpg")  # an exact duplicate
    rows.append({"id": "dup", "text": HAPPY, "images": ["img/copy_of_0.jpg"]})
    rows.append({"id": "escape", "text": HAPPY, "images": ["../../etc/passwd"]})
    rows.append({"id": "missing", "text": HAPPY, "images": ["img/nope.jpg"]})
    rows.append({"id": "empty", "text": "", "images": ["img/1.jpg"]})
    lines = [json.dumps(r) for r in rows] + ["{bad json"]
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "corpus.jsonl"


def _recipe(folder: Path, corpus: Path, **train: object) -> Path:
    recipe = {
        "name": "tiny",
        "corpus": {"path": str(corpus), "lang": None, "min_words": 3},
        "dedup": {"near": False},
        "teacher": {"kind": "vader"},
        "selection": {"thresholds": {"negative": 0.6, "neutral": 0.9, "positive": 0.6}, "val_fraction": 0.25},
        "student": {"architecture": "efficientnet_lite0", "image_size": 64, "pretrained": True},
        "train": {"epochs": 1, "freeze_backbone_epochs": 1, "batch_size": 8, "lr": 1e-3, "num_workers": 0,
                  "device": "cpu", **train},
        "export": {"dtype": "float16"},
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


@pytest.mark.slow
def test_whole_recipe_runs_and_reruns_skip_finished_stages(tmp_path):
    corpus = _corpus(tmp_path / "data")
    recipe = load_recipe(_recipe(tmp_path, corpus))
    run = DistillRun(recipe, tmp_path / "work")
    results = run.run()
    assert [r.name for r in results] == list(STAGES)
    ingest = results[0].summary["corpus"]
    assert ingest["dropped"]["bad_json"] == 1 and ingest["dropped"]["empty_text"] == 1
    assert ingest["images_dropped"]["path_escape"] == 1 and ingest["images_dropped"]["missing_file"] == 1
    assert results[1].summary["removed_exact"] == 1
    model_dir = Path(results[-1].summary["model_dir"])
    config = json.loads((model_dir / "config.json").read_text())
    assert config["provenance"]["teacher"]["id"].startswith("vader")
    assert config["provenance"]["recipe"]["name"] == "tiny"
    assert (model_dir / "README.md").read_text().startswith("---\nlibrary_name: imgsent")
    calibration = config["provenance"]["calibration"]  # fitted on the val split's teacher labels
    assert calibration["source"] == "val split" and calibration["heldout_images"] > 0
    assert config["temperature"] == calibration["temperature"] and "Expected calibration error" in (model_dir / "README.md").read_text()

    from imgsent import Predictor

    predictions = Predictor.from_pretrained(str(model_dir), device="cpu").predict(
        sorted(str(p) for p in (tmp_path / "data" / "img").glob("*.jpg"))
    )
    assert all(p.ok for p in predictions)

    again = DistillRun(recipe, tmp_path / "work").run()
    assert all(r.skipped for r in again)
    changed = load_recipe(tmp_path / "recipe.yaml", overrides={"export.dtype": "float32"})
    third = DistillRun(changed, tmp_path / "work").run()
    assert [r.skipped for r in third] == [True] * 6 + [False]


def test_cli_runs_stages_until_select(tmp_path):
    corpus = _corpus(tmp_path / "data")
    recipe = _recipe(tmp_path, corpus)
    result = CliRunner().invoke(app, ["distill", "run", str(recipe), "-d", str(tmp_path / "w"), "--until", "select"])
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "w" / "select" / "train.jsonl").read_text().splitlines()
    assert rows and all(json.loads(r)["label"] in ("negative", "positive") for r in rows)
    assert not (tmp_path / "w" / "train").exists()


def test_stage_needs_its_predecessors(tmp_path):
    corpus = _corpus(tmp_path / "data")
    recipe = load_recipe(_recipe(tmp_path, corpus))
    with pytest.raises(InvalidConfigError, match="needs stage 'ingest' first"):
        DistillRun(recipe, tmp_path / "w").run(only="train")


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ({"corpus": {"path": "c.jsonl"}, "extra": 1}, InvalidConfigError, r"Unknown recipe section\(s\) \['extra'\]"),
        ({"corpus": {"path": "c.jsonl", "colour": "red"}}, InvalidConfigError, r"Unknown key\(s\) \['colour'\] in recipe.corpus"),
        ({"corpus": {"path": "c.jsonl"}, "train": {"epochz": 1}}, InvalidConfigError, r"Unknown key\(s\) \['epochz'\] in recipe.train"),
        ({"corpus": {"path": "c.jsonl"}, "student": {"architecture": "resnet"}}, UnknownArchitectureError, "Unknown architecture 'resnet'"),
        ({"corpus": {"path": "c.jsonl"}, "teacher": {"kind": "gpt"}}, InvalidConfigError, "teacher.kind must be 'vader' or 'hf'"),
        ({"dedup": {}}, InvalidConfigError, "needs a corpus section"),
    ],
)
def test_recipe_validation(tmp_path, data, error, match):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(error, match=match):
        load_recipe(path)


def test_recipe_paths_resolve_against_the_recipe_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "r.yaml"
    path.write_text(yaml.safe_dump({"corpus": {"path": "../c.jsonl"}}))
    assert load_recipe(path).corpus.path == str((tmp_path / "c.jsonl").resolve())


@pytest.mark.slow
def test_train_stage_under_torchrun_with_two_processes(tmp_path):
    import os
    import subprocess
    import sys

    corpus = _corpus(tmp_path / "data")
    recipe = _recipe(tmp_path, corpus, epochs=0, freeze_backbone_epochs=1)
    work = tmp_path / "w"
    first = CliRunner().invoke(app, ["distill", "run", str(recipe), "-d", str(work), "--until", "select"])
    assert first.exit_code == 0, first.output
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(29900 + os.getpid() % 90),
           "-m", "imgsent", "distill", "stage", "train", str(recipe), "-d", str(work)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    marker = json.loads((work / "train" / "done.json").read_text())
    assert marker["summary"]["steps"] >= 1
    assert (Path(marker["summary"]["model_dir"]) / "model.safetensors").is_file()
    rest = CliRunner().invoke(app, ["distill", "run", str(recipe), "-d", str(work)])
    assert rest.exit_code == 0, rest.output
    assert "train: already done, skipped" in rest.output


def test_shipped_recipes_are_valid():
    from tests.conftest import REPO

    for name in ("default.yaml", "paper.yaml"):
        recipe = load_recipe(REPO / "recipes" / name)
        assert recipe.corpus.path.endswith(".jsonl")
    assert load_recipe(REPO / "recipes" / "paper.yaml").student.architecture == "vit_b16"
