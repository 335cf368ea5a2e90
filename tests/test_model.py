from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
from imgsent.errors import InvalidConfigError, ModelNotFoundError
from imgsent.models.sentiment import SentimentModel
from tests.conftest import tiny_config


def test_save_and_load_give_identical_outputs(tmp_path):
    torch.manual_seed(1)
    model = SentimentModel(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    loaded = SentimentModel.from_folder(tmp_path)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert loaded.config == model.config
    assert not loaded.training


def test_efficientnet_round_trip(tmp_path):
    model = SentimentModel(ModelConfig(ArchitectureConfig("efficientnet_lite0"), PreprocessConfig(image_size=64))).eval()
    model.save_pretrained(tmp_path)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), SentimentModel.from_folder(tmp_path)(x))


def test_fp16_storage_halves_size_and_barely_moves_outputs(tmp_path):
    torch.manual_seed(2)
    model = SentimentModel(tiny_config()).eval()
    model.save_pretrained(tmp_path / "fp32")
    model.save_pretrained(tmp_path / "fp16", dtype=torch.float16)
    size32 = (tmp_path / "fp32" / "model.safetensors").stat().st_size
    size16 = (tmp_path / "fp16" / "model.safetensors").stat().st_size
    assert size16 < 0.6 * size32
    loaded = SentimentModel.from_folder(tmp_path / "fp16")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x).softmax(-1), loaded(x).softmax(-1), atol=1e-2)
    assert next(loaded.parameters()).dtype == torch.float32


def test_weights_that_do_not_match_the_architecture(tmp_path):
    SentimentModel(tiny_config()).save_pretrained(tmp_path)
    save_file({"head.weight": torch.zeros(3, 3)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(InvalidConfigError, match="does not match architecture 'vit_b16'"):
        SentimentModel.from_folder(tmp_path)


def test_corrupt_weights_file(tmp_path):
    SentimentModel(tiny_config()).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(InvalidConfigError, match="not a readable safetensors file"):
        SentimentModel.from_folder(tmp_path)


def test_folder_without_files(tmp_path):
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        SentimentModel.from_folder(tmp_path)


def test_vit_image_size_must_match_preprocessing():
    arch = ArchitectureConfig("vit_b32", {"image_size": 224, "hidden_size": 16, "num_hidden_layers": 1,
                                          "num_attention_heads": 2, "intermediate_size": 16})
    with pytest.raises(InvalidConfigError, match=r"preprocess.image_size \(384\) must equal"):
        ModelConfig(arch, PreprocessConfig(image_size=384))


def test_the_input_size_is_the_preprocessing_size():
    small = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16}
    model = SentimentModel(ModelConfig(ArchitectureConfig("vit_b16", small), PreprocessConfig(image_size=48)))
    assert model.net.backbone.vit.config.image_size == 48
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 48, 48)).shape == (1, 3)


@pytest.mark.parametrize("name", ["vit_b32", "vit_b16", "vit_l32", "vit_l16"])
def test_paper_students_build_with_the_paper_head(name):
    from imgsent.registry import ARCHITECTURES

    spec = ARCHITECTURES[name]
    small = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16}
    model = SentimentModel(ModelConfig(ArchitectureConfig(name, small), PreprocessConfig(image_size=spec.default_image_size)))
    head = model.net.head.layers
    assert [type(m).__name__ for m in head] == ["Linear", "GELU", "Linear"]
    assert head[0].out_features == 32 and head[2].out_features == 3
    assert model.net.backbone.vit.config.patch_size == spec.backbone.patch_size


def test_every_architecture_has_a_builder_and_a_pretrained_source():
    from imgsent.models.network import BUILDERS
    from imgsent.registry import ARCHITECTURES, PRETRAINED_BACKBONES

    assert set(PRETRAINED_BACKBONES) == set(ARCHITECTURES)
    assert {type(spec.backbone) for spec in ARCHITECTURES.values()} <= set(BUILDERS)


def test_no_family_branches_remain():
    from pathlib import Path

    import imgsent

    root = Path(imgsent.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if "family ==" in p.read_text(encoding="utf-8")]
    assert offenders == []
