"""Temperature scaling, ECE, the confidence column and --min-confidence."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from imgsent.calibration import calibrate, expected_calibration_error, fit_temperature
from imgsent.cli.app import app
from imgsent.config import ModelConfig
from imgsent.errors import InvalidConfigError
from imgsent.models.sentiment import SentimentModel
from imgsent.outputs import COLUMNS, Prediction, labelled
from imgsent.predictor import Predictor
from tests.conftest import make_photo, tiny_config


def _sampled(temperature: float, n: int = 20000) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose labels are drawn from softmax(logits / temperature)."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(n, 3, generator=gen) * 4
    labels = torch.multinomial((logits / temperature).softmax(-1), 1, generator=gen).squeeze(1)
    return logits, labels


def test_fit_temperature_recovers_the_true_temperature() -> None:
    for true in (0.5, 2.0):
        assert fit_temperature(*_sampled(true)) == pytest.approx(true, rel=0.08)


def test_calibrate_lowers_ece_and_keeps_the_argmax() -> None:
    logits, labels = _sampled(2.5)
    result = calibrate(logits, labels, source="synthetic")
    assert result.ece_after < 0.02 < result.ece_before
    assert result.nll_after < result.nll_before
    assert sum(b.count for b in result.bins_after) == len(labels)
    assert torch.equal((logits / result.temperature).argmax(-1), logits.argmax(-1))
    assert json.loads(json.dumps(result.to_dict()))["source"] == "synthetic"


def test_ece_of_a_perfectly_calibrated_and_an_overconfident_model() -> None:
    probs = torch.tensor([[1.0, 0.0, 0.0]] * 4)
    assert expected_calibration_error(probs, torch.tensor([0, 0, 0, 0])) == 0.0
    assert expected_calibration_error(probs, torch.tensor([0, 0, 2, 2])) == pytest.approx(0.5)


def test_config_temperature_round_trip_and_default(tmp_path: Path) -> None:
    cfg = dataclasses.replace(tiny_config(), temperature=1.7)
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).temperature == 1.7
    old = cfg.to_dict()
    del old["temperature"]  # config.json files written before calibration existed
    assert ModelConfig.from_dict(old).temperature == 1.0
    for bad in (0, -1.0, "2", True, float("nan"), 1000.0):
        with pytest.raises(InvalidConfigError, match="temperature must be a number"):
            ModelConfig.from_dict({**old, "temperature": bad})


def test_predictor_applies_the_temperature(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SentimentModel(tiny_config())
    images = [make_photo(tmp_path / f"{i}.png", seed=i) for i in range(4)]
    plain = Predictor(model, device="cpu", dtype="float32").predict(images, workers=0)
    hot = SentimentModel(dataclasses.replace(model.config, temperature=3.0), net=model.net)
    scaled = Predictor(hot, device="cpu", dtype="float32").predict(images, workers=0)
    for a, b in zip(plain, scaled):
        expected = (torch.tensor([a.negative, a.neutral, a.positive]).log() / 3.0).softmax(-1)
        assert a.label == b.label
        assert [b.negative, b.neutral, b.positive] == pytest.approx(expected.tolist(), abs=1e-5)
        assert b.confidence == getattr(b, b.label)


def test_confidence_and_uncertain_convention() -> None:
    sure = labelled("a.jpg", (0.1, 0.1, 0.8), min_confidence=0.6)
    unsure = labelled("b.jpg", (0.35, 0.2, 0.45), min_confidence=0.6)
    assert (sure.label, sure.confidence) == ("positive", 0.8)
    assert (unsure.label, unsure.confidence, unsure.positive) == ("uncertain", 0.45, 0.45)
    assert labelled("c.jpg", (0.3, 0.4, 0.3), binary=True).label == "negative"  # ties go to negative
    assert Prediction("d.jpg", "negative", 0.7, 0.2, 0.1).confidence == 0.7
    assert Prediction.failed("e.jpg", "broken").confidence is None
    assert COLUMNS[:3] == ("path", "label", "confidence")
    with pytest.raises(InvalidConfigError, match="min_confidence must be a probability"):
        from imgsent.outputs import check_min_confidence

        check_min_confidence(1.5)


def test_classify_min_confidence_marks_and_counts_uncertain(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(5):
        make_photo(folder / f"{i}.png", seed=i)
    out = tmp_path / "out.csv"
    runner = CliRunner()
    result = runner.invoke(app, ["classify", str(folder), "-o", str(out), "-m", str(tiny_model_dir),
                                 "--device", "cpu", "--workers", "0", "--min-confidence", "1.0"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [r["label"] for r in rows] == ["uncertain"] * 5  # nothing is 100 % sure
    for row in rows:
        assert float(row["confidence"]) == max(float(row[k]) for k in ("negative", "neutral", "positive"))
    assert "uncertain 5" in result.output
    bad = runner.invoke(app, ["classify", str(folder), "--min-confidence", "1.5"])
    assert bad.exit_code == 2


def test_crossfit_logits_are_out_of_fold_and_leave_the_head_alone() -> None:
    from torch import nn

    from imgsent.distill.probe import crossfit_logits

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(60, 8, generator=gen)
    y = (x[:, 0] > 0).long() * 2  # negative or positive, learnable from feature 0
    head = nn.Sequential(nn.Linear(8, 3))
    before = [p.clone() for p in head.parameters()]
    logits, labels, source = crossfit_logits(head, x, y, None, torch.arange(60) % 5, 5, l2=0.01, class_weights=None)
    assert logits.shape == (60, 3) and torch.equal(labels, y) and source.startswith("5-fold")
    assert all(torch.equal(a, b) for a, b in zip(before, head.parameters()))
    assert (logits.argmax(-1) == y).float().mean() > 0.8  # each fold's probe learned the rule it never saw scored


def test_calibrating_a_folder_writes_nothing_into_the_engine_cache(tmp_path: Path, monkeypatch) -> None:
    from imgsent.calibration import calibrate_model_folder

    monkeypatch.setenv("IMGSENT_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    folder = SentimentModel(tiny_config()).save_pretrained(tmp_path / "model")
    images = [str(make_photo(tmp_path / f"{i}.png", seed=i)) for i in range(6)]
    fitted = calibrate_model_folder(folder, images, [0, 2, 0, 2, 2, 0])
    assert fitted is not None and ModelConfig.load(folder).temperature == fitted.temperature
    assert not (tmp_path / "cache").exists()  # PyTorch ran it: no export, not even an empty cache folder
