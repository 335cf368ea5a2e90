"""The Keras .h5 converter against TensorFlow's own outputs (fixtures in tests/fixtures/keras).

The fixtures were written by tests/fixtures/keras/make_keras_fixtures.py with TensorFlow 2.15 and
vit-keras 0.1.2: the authors' architecture with small configs, seeded random weights and every
LayerNorm, the class token, the position embeddings and the head perturbed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.convert import KerasPreset, convert_keras
from imgsent.errors import ConversionError
from imgsent.models.sentiment import SentimentModel
from imgsent.predictor import Predictor
from imgsent.transforms import normalize

FIXTURES = Path(__file__).parent / "fixtures" / "keras"
REFERENCE = np.load(FIXTURES / "reference.npz", allow_pickle=False)
SPECS = json.loads((FIXTURES / "reference.json").read_text())["fixtures"]


def tiny_preset(name: str) -> KerasPreset:
    """The preset of one fixture (its shapes, head count and normalisation)."""
    spec = SPECS[name]
    return KerasPreset(
        name, "vit_b32", spec["patch_size"], spec["hidden_size"], spec["num_layers"], spec["num_heads"],
        spec["mlp_dim"], spec["image_size"], scale=spec["scale"],
    )


@pytest.mark.parametrize("fmt", ["model", "weights"])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_probabilities_match_tensorflow_on_identical_inputs(tmp_path: Path, name: str, fmt: str) -> None:
    folder = convert_keras(FIXTURES / f"{name}_{fmt}.h5", tmp_path / "out", preset=tiny_preset(name))
    model = SentimentModel.from_pretrained(folder)
    pixels = torch.from_numpy(REFERENCE[f"{name}/pixels"]).permute(0, 3, 1, 2)
    with torch.inference_mode():
        probs = model(normalize(pixels, model.config.preprocess)).softmax(-1).numpy()
    expected = REFERENCE[f"{name}/probs"]
    assert expected.std() > 0.02  # the fixture is not a near-uniform output that would hide errors
    np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_predictor_matches_tensorflow_pipeline_on_lossless_images(tmp_path: Path, name: str) -> None:
    """Decode, bilinear resize without antialias (down- and up-scaling) and normalisation, end to end."""
    folder = convert_keras(FIXTURES / f"{name}_model.h5", tmp_path / "out", preset=tiny_preset(name))
    predictor = Predictor.from_pretrained(folder, device="cpu", dtype="float32")
    for image in ("down.png", "up.png"):
        (pred,) = predictor.predict([FIXTURES / image], workers=0)
        got = np.array([pred.negative, pred.neutral, pred.positive])
        np.testing.assert_allclose(got, REFERENCE[f"{name}/{image}/probs"][0], rtol=0, atol=1e-5)


def test_converted_folder_records_faithful_preprocessing(tmp_path: Path) -> None:
    folder = convert_keras(FIXTURES / "tiny_symmetric_weights.h5", tmp_path / "out", preset=tiny_preset("tiny_symmetric"))
    config = json.loads((folder / "config.json").read_text())
    assert config["preprocess"] | {"mean": None, "std": None} == {
        "image_size": 24, "resize_mode": "squash", "interpolation": "bilinear", "mean": None, "std": None,
        "resize_antialias": False, "jpeg_draft": False, "reducing_gap": 3.0,  # unused without antialiasing
    }
    assert config["preprocess"]["mean"] == [0.5] * 3 and config["preprocess"]["std"] == [0.5] * 3
    assert config["architecture"]["args"]["head_activation"] == "gelu_tanh"
    assert config["architecture"]["args"]["layer_norm_eps"] == 1e-6
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]


def test_truncated_file_is_a_typed_error_and_writes_nothing(tmp_path: Path) -> None:
    data = (FIXTURES / "tiny_unit_model.h5").read_bytes()
    bad = tmp_path / "ViT_B32.h5"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConversionError, match="truncated"):
        convert_keras(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ViT_B32.h5"]


def test_foreign_h5_is_refused(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5:
        h5["conv1/kernel:0"] = np.zeros((3, 3, 3, 8), np.float32)
    with pytest.raises(ConversionError, match="not a vit-keras ViT: no 'embedding/kernel'"):
        convert_keras(path, tmp_path / "out")
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        convert_keras(text, tmp_path / "out")


def _copy_without(tmp_path: Path, suffix: str) -> Path:
    import h5py

    path = tmp_path / "tiny.h5"
    shutil.copy(FIXTURES / "tiny_unit_weights.h5", path)
    with h5py.File(path, "a") as h5:
        names: list[str] = []
        h5.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and n.endswith(suffix) else None)
        assert len(names) == 1, names
        del h5[names[0]]
    return path


def test_missing_layer_is_named(tmp_path: Path) -> None:
    path = _copy_without(tmp_path, "encoderblock_1/LayerNorm_2/gamma:0")
    with pytest.raises(ConversionError, match=r"missing layer weights: \['block1.ln2.gamma'\]"):
        convert_keras(path, tmp_path / "out", preset=tiny_preset("tiny_unit"))
    assert not (tmp_path / "out").exists()


def test_missing_head_is_named(tmp_path: Path) -> None:
    path = _copy_without(tmp_path, "dense_1/kernel:0")
    with pytest.raises(ConversionError, match="expected exactly two head Dense layers.*found 1"):
        convert_keras(path, tmp_path / "out", preset=tiny_preset("tiny_unit"))


def test_shape_mismatch_names_the_sizes(tmp_path: Path) -> None:
    wrong = KerasPreset("wrong", "vit_b32", 4, 64, 2, 4, 128, 16, scale="unit")
    with pytest.raises(ConversionError, match=r"does not fit preset 'wrong': mlp_dim=96 \(preset: 128\)"):
        convert_keras(FIXTURES / "tiny_unit_model.h5", tmp_path / "out", preset=wrong)
    named = tmp_path / "ViT_L16.h5"  # the release's name says L/16, the shapes say otherwise
    shutil.copy(FIXTURES / "tiny_unit_model.h5", named)
    with pytest.raises(ConversionError, match=r"does not fit preset 'vit-l16': patch_size=4 \(preset: 16\)"):
        convert_keras(named, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_shapes_without_preset_ask_for_one(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="match none of the presets"):
        convert_keras(FIXTURES / "tiny_unit_model.h5", tmp_path / "out")
    with pytest.raises(ConversionError, match=r"Unknown preset 'vit-h14'. Valid presets: vit-b16, vit-b32, vit-l16, vit-l32\."):
        convert_keras(FIXTURES / "tiny_unit_model.h5", tmp_path / "out", preset="vit-h14")


def test_existing_output_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ConversionError, match="already exists"):
        convert_keras(FIXTURES / "tiny_unit_model.h5", tmp_path / "out", preset=tiny_preset("tiny_unit"))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_cli_convert_reports_errors_and_lists_paper_models(tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), env={"COLUMNS": "250"})
        return result.exit_code, " ".join(result.output.split())

    code, out = run("convert", "keras", str(FIXTURES / "tiny_unit_model.h5"), "-o", str(tmp_path / "o"))
    assert code == 1 and "match none of the presets" in out
    code, out = run("convert", "keras", str(FIXTURES / "tiny_unit_model.h5"), "-o", str(tmp_path / "o"), "--preset", "vit-b32")
    assert code == 1 and "hidden_size=64 (preset: 768)" in out
    assert not (tmp_path / "o").exists()
    code, out = run("models")
    assert code == 0, out
    assert "paper-vit-b32" in out and "paper-reported Twitter I: 86.5 / 82.6 / 78.9" in out


def test_new_config_options_are_validated() -> None:
    from imgsent.config import ModelConfig
    from imgsent.errors import InvalidConfigError

    base = {"architecture": {"name": "vit_b32", "args": {"head_activation": "gelu_tanh", "layer_norm_eps": 1e-6}}}
    assert ModelConfig.from_dict(base).preprocess.resize_antialias is True  # old folders keep today's behaviour
    with pytest.raises(InvalidConfigError, match=r"head_activation must be one of \['gelu', 'gelu_tanh'\], got 'relu'"):
        ModelConfig.from_dict({"architecture": {"name": "vit_b32", "args": {"head_activation": "relu"}}})
    with pytest.raises(InvalidConfigError, match="preprocess.jpeg_draft must be true or false, got 'no'"):
        ModelConfig.from_dict({**base, "preprocess": {"jpeg_draft": "no"}})
    with pytest.raises(InvalidConfigError, match="resize_antialias=false needs interpolation 'bilinear'"):
        ModelConfig.from_dict({**base, "preprocess": {"resize_antialias": False, "interpolation": "lanczos"}})


def test_float_resize_is_not_pillows_antialiased_resize() -> None:
    """The float path (TF parity is covered by the PNG test above) is not Pillow's antialiased one when shrinking."""
    from PIL import Image

    from imgsent.config import PreprocessConfig
    from imgsent.transforms import preprocess

    image = Image.open(FIXTURES / "down.png").convert("RGB")
    faithful = preprocess(image, PreprocessConfig(image_size=16, interpolation="bilinear", resize_antialias=False))
    pillow = preprocess(image, PreprocessConfig(image_size=16, interpolation="bilinear"))
    assert faithful.dtype == torch.float32 and faithful.shape == (3, 16, 16)
    assert pillow.dtype == torch.float32 and torch.equal(pillow, pillow.round())  # one type; Pillow's 8-bit values
    assert (faithful - pillow.float()).abs().max() > 5  # no antialias: a different image when shrinking 61 px to 16
