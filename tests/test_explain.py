"""Saliency maps (Grad-CAM) for EfficientNet and ViT students, and the explain command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
from imgsent.errors import ExplainError, ImageDecodeError
from imgsent.models.sentiment import SentimentModel
from imgsent.predictor import Predictor
from tests.conftest import make_photo, tiny_config

pytest.importorskip("pytorch_grad_cam", reason="needs the explain extra: pip install 'imgsent[explain]'")


def _predictor(config: ModelConfig) -> Predictor:
    torch.manual_seed(0)
    return Predictor(SentimentModel(config), device="cpu", dtype="float32")


@pytest.mark.parametrize("mode", ["squash", "crop", "letterbox"])
def test_vit_maps_have_the_image_size(tmp_path: Path, mode: str) -> None:
    predictor = _predictor(ModelConfig(tiny_config().architecture, PreprocessConfig(image_size=32, resize_mode=mode)))
    image = make_photo(tmp_path / "wide.png", size=(90, 40))
    (heat,) = predictor.explain(str(image))
    assert heat.shape == (40, 90) and heat.dtype == np.float32
    assert 0.0 <= heat.min() and heat.max() <= 1.0


def test_efficientnet_map_and_target(tmp_path: Path) -> None:
    predictor = _predictor(ModelConfig(ArchitectureConfig("efficientnet_lite0", {"head_hidden": 0}), PreprocessConfig(image_size=64)))
    image = make_photo(tmp_path / "tall.png", size=(30, 70))
    maps = predictor.explain([str(image), Image.open(image)], target="negative")
    assert [m.shape for m in maps] == [(70, 30), (70, 30)]
    assert np.allclose(maps[0], maps[1])
    with pytest.raises(ExplainError, match="target must be one of"):
        predictor.explain(str(image), target="happy")
    with pytest.raises(ImageDecodeError):
        predictor.explain(b"not an image")


def test_explain_cli_writes_overlays_and_reports_bad_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    a = make_photo(tmp_path / "a.png", size=(80, 40))
    sub = tmp_path / "sub"
    sub.mkdir()
    a2 = make_photo(sub / "a.png", size=(40, 80), seed=1)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"nope")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["explain", str(a), str(a2), str(broken), "-o", str(out), "-m", str(tiny_model_dir),
                                      "--device", "cpu"])
    assert result.exit_code == 3, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a-2.png", "a.png", "index.csv"]
    assert Image.open(out / "a.png").size == (80, 40)   # aspect ratio kept
    assert Image.open(out / "a-2.png").size == (40, 80)
    assert "broken.jpg" in result.output
