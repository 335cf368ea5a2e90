from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from imgsent.distill.probe import fit_probe
from imgsent.distill.records import TrainConfig
from imgsent.distill.trainer import train_student
from imgsent.errors import InvalidConfigError
from imgsent.models.sentiment import SentimentModel
from tests.conftest import tiny_config


def test_standardisation_is_folded_into_the_head():
    torch.manual_seed(0)
    head = torch.nn.Linear(4, 3)
    feats = torch.randn(60, 4) * torch.tensor([10.0, 0.1, 3.0, 1.0]) + torch.tensor([5.0, -2.0, 0.0, 1.0])
    labels = (feats[:, 0] > 5).long() * 2
    fit_probe(head, feats, labels, None, l2=1e-3, class_weights=None)
    accuracy = (head(feats).argmax(-1) == labels).float().mean()
    assert accuracy > 0.95  # raw features in, no separate standardisation step


def test_l2_shrinks_the_weights():
    torch.manual_seed(0)
    feats, labels = torch.randn(80, 8), torch.randint(0, 3, (80,))
    norms = []
    for l2 in (1e-4, 10.0):
        head = torch.nn.Linear(8, 3)
        fit_probe(head, feats, labels, None, l2=l2, class_weights=None)
        norms.append(float(head.weight.norm()))
    assert norms[1] < norms[0] / 5


def _images(folder, n=16):
    rows = []
    for i in range(n):
        label = 2 if i % 2 else 0
        colour = (220, 200, 40) if label == 2 else (20, 30, 120)
        path = folder / f"{i}.png"
        Image.fromarray(np.full((40, 40, 3), colour, dtype=np.uint8)).save(path)
        rows.append({"path": str(path), "label": label, "probs": [0.9, 0.05, 0.05] if label == 0 else [0.05, 0.05, 0.9]})
    return rows


def test_lbfgs_solver_exports_a_working_model(tmp_path):
    rows = _images(tmp_path)
    model = SentimentModel(tiny_config())
    config = TrainConfig(solver="lbfgs", l2=1e-3, epochs=0, device="cpu", num_workers=0, class_weights="balanced")
    result = train_student(model, rows[:12], rows[12:], config, tmp_path / "run")
    assert result.completed and result.history[0].val_accuracy == 1.0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["solver"] == "lbfgs"
    from imgsent import Predictor

    predictions = Predictor.from_pretrained(str(result.model_dir), device="cpu").predict([r["path"] for r in rows], workers=0)
    assert [p.label for p in predictions] == ["negative" if r["label"] == 0 else "positive" for r in rows]


def test_lbfgs_then_fine_tuning(tmp_path):
    rows = _images(tmp_path, n=8)
    config = TrainConfig(solver="lbfgs", epochs=1, batch_size=4, device="cpu", num_workers=0, keep_model="last")
    result = train_student(SentimentModel(tiny_config()), rows, [], config, tmp_path / "run")
    assert (tmp_path / "run" / "probe" / "model" / "model.safetensors").is_file()
    assert result.steps == 2 and result.history[-1].phase == "full"


def test_l2_must_be_non_negative():
    with pytest.raises(InvalidConfigError, match="l2 must be a float"):
        TrainConfig(solver="lbfgs", l2=-1.0)
    with pytest.raises(InvalidConfigError, match="solver must be one of"):
        TrainConfig(solver="adam")  # type: ignore[arg-type]
