"""Explanations: built on the predictor's pipeline, Grad-CAM maps for EfficientNet and ViT, overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
from imgsent.errors import ExplainError
from imgsent.explain import Explanation, colormap, explain_files, float_network, overlay
from imgsent.models.sentiment import SentimentModel
from imgsent.outputs import Prediction
from imgsent.predictor import Predictor
from tests.conftest import make_photo, tiny_config

pytest.importorskip("pytorch_grad_cam", reason="needs the explain extra: pip install 'imgsent[explain]'")

EFFICIENTNET = ArchitectureConfig("efficientnet_lite0", {"head_hidden": 0})


def _predictor(config: ModelConfig, **kwargs: object) -> Predictor:
    torch.manual_seed(0)
    return Predictor(SentimentModel(config), device="cpu", backend="torch", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["squash", "crop", "letterbox"])
def test_vit_maps_have_the_image_size(tmp_path: Path, mode: str) -> None:
    predictor = _predictor(ModelConfig(tiny_config().architecture, PreprocessConfig(image_size=32, resize_mode=mode)))
    image = make_photo(tmp_path / "wide.png", size=(90, 40))
    (item,) = predictor.explain(str(image))
    assert item.heatmap is not None and item.heatmap.shape == (40, 90) and item.heatmap.dtype == np.float32
    assert 0.0 <= item.heatmap.min() and item.heatmap.max() <= 1.0
    assert item.target == item.prediction.label


def test_efficientnet_map_target_and_bad_inputs(tmp_path: Path) -> None:
    predictor = _predictor(ModelConfig(EFFICIENTNET, PreprocessConfig(image_size=64)))
    image = make_photo(tmp_path / "tall.png", size=(30, 70))
    items = predictor.explain([str(image), Image.open(image), b"not an image"], target="negative")
    assert [i.heatmap.shape for i in items[:2]] == [(70, 30), (70, 30)]  # type: ignore[union-attr]
    assert np.allclose(items[0].heatmap, items[1].heatmap) and items[0].target == "negative"
    assert items[2].heatmap is None and items[2].target is None and "not a recognised image" in items[2].prediction.error
    with pytest.raises(ExplainError, match=r"target must be one of \['negative', 'neutral', 'positive'\] or None"):
        predictor.explain(str(image), target="happy")


def test_the_prediction_is_the_one_predict_gives_on_a_large_jpeg(tmp_path: Path) -> None:
    # 1600 x 1200 decodes by DCT draft at 1/4 scale; explain must see the same pixels and probabilities.
    rng = np.random.default_rng(3)
    smooth = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((1600, 1200), Image.Resampling.BICUBIC)
    path = tmp_path / "large.jpg"
    smooth.save(path, quality=90)
    predictor = _predictor(ModelConfig(EFFICIENTNET, PreprocessConfig(image_size=64)), dtype="float32")
    (item,) = predictor.explain(str(path))
    assert item.prediction == predictor.predict(str(path))[0]
    assert item.heatmap is not None and item.heatmap.shape == (1200, 1600)


def test_the_network_is_not_copied_per_image(tmp_path: Path) -> None:
    predictor = _predictor(ModelConfig(EFFICIENTNET, PreprocessConfig(image_size=32)), dtype="float32")
    assert float_network(predictor.model.net) is predictor.model.net  # float32: used as it is
    low = _predictor(ModelConfig(EFFICIENTNET, PreprocessConfig(image_size=32)), dtype="bfloat16")
    copy = float_network(low.model.net)
    assert copy is not low.model.net and next(copy.parameters()).dtype == torch.float32
    assert float_network(low.model.net) is copy  # made once, kept
    image = make_photo(tmp_path / "a.png")
    first, second = low.explain([str(image)]), low.explain([str(image)])
    assert np.array_equal(first[0].heatmap, second[0].heatmap)
    assert all(p.grad is None for p in low.model.net.parameters())  # no gradients left behind


def test_colormap_runs_blue_to_red() -> None:
    ends = colormap(np.array([0.0, 0.5, 1.0]))
    assert ends.shape == (3, 3)
    assert ends[0].argmax() == 2 and ends[-1].argmax() == 0  # blue at 0, red at 1
    assert ends.min() >= 0 and ends.max() <= 1


def test_overlay_shows_image_and_map_side_by_side_with_a_caption_and_scale() -> None:
    image = Image.new("RGB", (400, 200), (0, 128, 0))
    heat = np.tile(np.linspace(0, 1, 400, dtype=np.float32), (200, 1))
    prediction = Prediction(source="x", label="positive", negative=0.1, neutral=0.2, positive=0.7)
    canvas = np.asarray(overlay(image, Explanation(prediction, heat, "positive"), panel=200))
    height, width, _ = canvas.shape
    assert width > 2 * 200 and height > 100  # two 200 x 100 panels plus caption and colour bar
    left_panel = canvas[34 + 12 + 50, 12 + 100]
    assert tuple(left_panel) == (0, 128, 0)  # the original, untouched
    right = canvas[34 + 12 + 50, 2 * 12 + 200 : 2 * 12 + 400].astype(int)
    assert right[5, 2] > right[5, 0] and right[-5, 0] > right[-5, 2]  # map: blue (low) on the left, red on the right
    with pytest.raises(ExplainError, match="No heat map"):
        overlay(image, Explanation(Prediction.failed("x", "broken"), None, None))


def test_explain_files_reports_progress_and_bad_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    a = make_photo(tmp_path / "a.png", size=(80, 40))
    sub = tmp_path / "sub"
    sub.mkdir()
    a2 = make_photo(sub / "a.png", size=(40, 80), seed=1)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"nope")
    progress: list[tuple[int, int]] = []
    predictor = Predictor.from_pretrained(str(tiny_model_dir), device="cpu", backend="torch")
    written = explain_files(predictor, [a, a2, broken], tmp_path / "out", on_progress=lambda d, t: progress.append((d, t)))
    assert progress == [(1, 3), (2, 3), (3, 3)]
    assert [w.path.name if w.path else None for w in written] == ["a.png", "a-2.png", None]
    assert "broken.jpg" in (written[2].error or "") and written[0].label in ("negative", "neutral", "positive")
    wide, tall = Image.open(written[0].path).size, Image.open(written[1].path).size  # type: ignore[arg-type]
    assert wide[0] > tall[0]  # panels keep each image's aspect ratio


def test_explain_cli_writes_overlays_and_reports_bad_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    a = make_photo(tmp_path / "a.png", size=(80, 40))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"nope")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["explain", str(a), str(broken), "-o", str(out), "-m", str(tiny_model_dir),
                                      "--device", "cpu"])
    assert result.exit_code == 3, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "index.csv"]
    assert "broken.jpg" in result.output
