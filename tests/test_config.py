from __future__ import annotations

import json

import pytest

from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
from imgsent.errors import InvalidConfigError, UnknownArchitectureError


def _valid() -> dict:
    return ModelConfig(ArchitectureConfig("efficientnet_lite0", {"head_hidden": 32}), PreprocessConfig()).to_dict()


def test_round_trip_through_json(tmp_path):
    cfg = ModelConfig(
        ArchitectureConfig("vit_b16", {"image_size": 384}),
        PreprocessConfig(image_size=384, resize_mode="squash", interpolation="bilinear"),
        provenance={"teacher": "vader", "metrics": {"acc": 0.8}},
    )
    cfg.save(tmp_path)
    assert ModelConfig.load(tmp_path) == cfg
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["format_version"] == 1
    assert data["labels"] == ["negative", "neutral", "positive"]


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(format_version=99), "format_version=99"),
        (lambda d: d["architecture"].update(name="resnet9000"), "Unknown architecture 'resnet9000'. Valid names: "),
        (lambda d: d["architecture"]["args"].update(head_hidden=-1), r"head_hidden must be an integer in \[0, 4096\], got -1"),
        (lambda d: d["architecture"]["args"].update(evil="x"), "evil is not an option of 'efficientnet_lite0'"),
        (lambda d: d["preprocess"].update(image_size=10**6), r"image_size must be an integer in \[16, 2048\]"),
        (lambda d: d["preprocess"].update(image_size=True), "image_size must be an integer"),
        (lambda d: d["preprocess"].update(resize_mode="stretch"), "resize_mode must be one of"),
        (lambda d: d["preprocess"].update(std=[0.5, 0.0, 0.5]), "std must be a list of 3 positive"),
        (lambda d: d["preprocess"].update(mean=[float("nan"), 0, 0]), "mean must be a list of 3 finite"),
        (lambda d: d.update(labels=["positive", "neutral", "negative"]), "labels must be"),
        (lambda d: d.update(architecture="efficientnet_lite0"), "architecture must be a dict"),
        (lambda d: d.update(provenance=[1]), "provenance must be a dict"),
    ],
)
def test_untrusted_values_are_rejected_with_the_reason(mutate, match):
    data = _valid()
    mutate(data)
    with pytest.raises((InvalidConfigError, UnknownArchitectureError), match=match):
        ModelConfig.from_dict(data)


def test_errors_subclass_builtins():
    with pytest.raises(KeyError):
        ModelConfig.from_dict({**_valid(), "architecture": {"name": "nope"}})
    with pytest.raises(ValueError):
        ModelConfig.from_dict([])


def test_invalid_json_file(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InvalidConfigError, match="is not valid JSON"):
        ModelConfig.load(tmp_path)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: PreprocessConfig(image_size=8), r"preprocess.image_size must be an integer in \[16, 2048\], got 8"),
        (lambda: PreprocessConfig(interpolation="cubic"), "preprocess.interpolation must be one of"),
        (lambda: PreprocessConfig(std=(1.0, 1.0)), "preprocess.std must be a list of 3 positive"),
        (lambda: ArchitectureConfig("efficientnet_lite0", {"dropout": 2.0}), r"dropout must be a number in \[0.0, 0.9\]"),
        (lambda: ArchitectureConfig("efficientnet_lite0", {"image_size": 224}), "image_size is not an option"),
        (lambda: ModelConfig(ArchitectureConfig("efficientnet_lite0"), labels=("a", "b", "c")), "labels must be"),
    ],
)
def test_records_validate_when_constructed(build, match):
    with pytest.raises(InvalidConfigError, match=match):
        build()


def test_constructed_records_equal_their_json_round_trip():
    cfg = ModelConfig(ArchitectureConfig("efficientnet_lite0"), PreprocessConfig(mean=[0.4, 0.5, 0.6]))
    assert cfg.preprocess.mean == (0.4, 0.5, 0.6)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_config_and_registry_do_not_import_each_other_both_ways():
    import ast
    from pathlib import Path

    import imgsent.registry

    tree = ast.parse(Path(imgsent.registry.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "imgsent.config" not in imported


def test_the_model_folder_reference_lists_every_config_field() -> None:
    import dataclasses
    from pathlib import Path

    from imgsent.config import ModelConfig, PreprocessConfig

    page = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "model-folder.md").read_text(encoding="utf-8")
    fields = [f.name for f in dataclasses.fields(ModelConfig) if f.name not in ("architecture", "preprocess")]
    fields += ["architecture.name", "architecture.args"] + [f"preprocess.{f.name}" for f in dataclasses.fields(PreprocessConfig)]
    missing = [name for name in fields if f"`{name}`" not in page]
    assert missing == []
