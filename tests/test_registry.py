"""The registry: plain dict literals, torch-free, one record per paper release."""

from __future__ import annotations

import subprocess
import sys


from imgsent.registry import ARCHITECTURES, KNOWN_MODELS, PAPER_RELEASES, PaperRelease, ViT


def test_registry_imports_without_torch():
    code = "import sys, imgsent.registry; print(sorted(m for m in ('torch', 'numpy', 'huggingface_hub') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_release_names_a_vit_and_a_file():
    for stem, release in PAPER_RELEASES.items():
        assert release.stem == stem and release.filename.endswith(".h5")
        assert isinstance(ARCHITECTURES[release.architecture].backbone, ViT)
        assert release.scale in ("unit", "symmetric") and release.preset == release.architecture.replace("_", "-")


def test_known_paper_models_are_release_records_with_the_papers_accuracies():
    paper = {name: src for name, src in KNOWN_MODELS.items() if isinstance(src, PaperRelease)}
    assert {name: src.filename for name, src in paper.items()} == {
        "paper-vit-l16": "ViT_L16.h5", "paper-vit-b16": "ViT_B16.h5",
        "paper-vit-b32": "ViT_B32.h5", "paper-vit-l32": "ViT_L32.h5",
    }
    assert all(src in PAPER_RELEASES.values() for src in paper.values())
    assert paper["paper-vit-l16"].twitter1 == (87.8, 84.8, 81.9)
    assert paper["paper-vit-b32"].image_size == 224 and paper["paper-vit-b32"].scale == "unit"
    assert "86.5 / 82.6 / 78.9 %" in paper["paper-vit-b32"].summary()
    assert str(paper["paper-vit-b32"]) == "paper release: ViT_B32.h5"


def test_converter_presets_take_their_sizes_from_the_architecture_records():
    from imgsent.convert.keras import PRESETS

    assert set(PRESETS) == {"vit-b32", "vit-b16", "vit-l32", "vit-l16"}
    for name, preset in PRESETS.items():
        vit = ARCHITECTURES[preset.architecture].backbone
        assert (preset.patch_size, preset.hidden_size, preset.num_layers, preset.num_heads, preset.mlp_dim) == (
            vit.patch_size, vit.hidden_size, vit.num_hidden_layers, vit.num_attention_heads, vit.intermediate_size)
    assert PRESETS["vit-l16"].image_size == 384 and PRESETS["vit-l16"].scale == "symmetric"
