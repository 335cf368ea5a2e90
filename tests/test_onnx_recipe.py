"""The ONNX export is self-describing: the documented client (docs/how-to/onnx_client.py, included in
docs/how-to/engines.md) reads only the file's metadata and matches imgsent's own predictions."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
from imgsent.engines.export import export_onnx, onnx_metadata
from imgsent.models.sentiment import SentimentModel
from imgsent.predictor import Predictor

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "docs" / "how-to" / "onnx_client.py"
PHOTO = ROOT / "examples" / "images" / "coffee_cup.jpg"
PORTRAIT = ROOT / "examples" / "images" / "chelsea_the_cat.jpg"


def _client() -> ModuleType:
    spec = importlib.util.spec_from_file_location("onnx_client", CLIENT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _images(folder: Path) -> list[str]:
    """Real photos made hard: every JPEG draft scale, a large PNG, EXIF rotations, alpha, palette, greyscale."""
    photo = Image.open(PHOTO).convert("RGB")
    paths = [str(PHOTO), str(PORTRAIT)]
    for side in (500, 1000, 2000, 3000):  # draft scales 1/2, 1/4, 1/8, 1/8
        scaled = photo.resize((side, side * photo.height // photo.width), Image.Resampling.BICUBIC)
        scaled.save(folder / f"jpeg{side}.jpg", quality=92)
        paths.append(str(folder / f"jpeg{side}.jpg"))
    large = photo.resize((3000, 3000 * photo.height // photo.width), Image.Resampling.BICUBIC)
    large.save(folder / "large.png")
    paths.append(str(folder / "large.png"))
    for orientation in (3, 6, 8):
        exif = Image.Exif()
        exif[0x0112] = orientation
        large.save(folder / f"exif{orientation}.jpg", quality=90, exif=exif)
        photo.save(folder / f"exif{orientation}-small.jpg", quality=90, exif=exif)
        paths += [str(folder / f"exif{orientation}.jpg"), str(folder / f"exif{orientation}-small.jpg")]
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    rgba.save(folder / "alpha.png")
    photo.convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.gif")
    large.convert("L").save(folder / "grey.jpg", quality=90)
    return paths + [str(folder / "alpha.png"), str(folder / "palette.gif"), str(folder / "grey.jpg")]


def _max_dp(predictor: Predictor, onnx_path: Path, paths: list[str]) -> tuple[float, int]:
    client = _client()
    session, meta = client.open_model(str(onnx_path))
    theirs = client.predict(session, meta, paths)
    ours = predictor.predict(paths, workers=0)
    assert all(p.ok for p in ours), [p.error for p in ours]
    dp = max(abs(getattr(o, k) - t[k]) for o, t in zip(ours, theirs) for k in ("negative", "neutral", "positive"))
    flips = sum(o.label != max(t, key=t.get) for o, t in zip(ours, theirs))
    return dp, flips


def test_the_documented_client_matches_predict_on_real_photos(tmp_path: Path) -> None:
    model = SentimentModel.from_pretrained()
    onnx_path = export_onnx(model, tmp_path / "model.onnx")
    predictor = Predictor.from_pretrained(device="cpu", dtype="float32")  # what `imgsent classify --dtype float32` runs
    dp, flips = _max_dp(predictor, onnx_path, _images(tmp_path))
    assert dp <= 1e-4 and flips == 0


@pytest.mark.parametrize("mode", ["crop", "letterbox"])
def test_the_client_follows_every_resize_mode(tmp_path: Path, mode: str) -> None:
    import torch

    torch.manual_seed(0)
    config = ModelConfig(ArchitectureConfig("efficientnet_lite0", {"head_hidden": 0}),
                         PreprocessConfig(image_size=64, resize_mode=mode, interpolation="bilinear", reducing_gap=None),
                         temperature=0.5)
    model = SentimentModel(config)
    onnx_path = export_onnx(model, tmp_path / "model.onnx")
    paths = _images(tmp_path)[:6]
    dp, _ = _max_dp(Predictor(model, device="cpu", dtype="float32", backend="torch"), onnx_path, paths)
    assert dp <= 1e-4


def test_every_pixel_changing_step_has_its_own_key() -> None:
    meta = onnx_metadata(SentimentModel.from_pretrained())
    steps = ["frame", "jpeg_draft", "jpeg_draft_size", "exif_orientation", "alpha_background", "high_bit_depth",
             "image_size", "resize_mode", "interpolation", "resize_antialias", "resize_reducing_gap", "letterbox_fill",
             "resize_rounding", "mean", "std", "labels", "temperature"]
    assert [step for step in steps if f"imgsent.{step}" not in meta] == []
    # A new preprocessing field must get its own key (add it here and in onnx_metadata).
    keys = {"reducing_gap": "resize_reducing_gap"}
    fields = [f.name for f in dataclasses.fields(PreprocessConfig)]
    assert [f for f in fields if f"imgsent.{keys.get(f, f)}" not in meta] == []
    assert json.loads(meta["imgsent.jpeg_draft_size"]) == [224, 224] and json.loads(meta["imgsent.resize_reducing_gap"]) == 3.0


def test_the_engines_page_includes_the_client() -> None:
    page = (ROOT / "docs" / "how-to" / "engines.md").read_text(encoding="utf-8")
    assert '--8<-- "docs/how-to/onnx_client.py"' in page
