"""ViT backbones from transformers, as the paper's students."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from imgsent.registry import ViT


class ViTBackbone(nn.Module):
    """A transformers ``ViTModel`` returning the final-layer-normed [CLS] token."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.vit = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.vit(pixel_values=pixels, interpolate_pos_encoding=False)
        return out.last_hidden_state[:, 0]


def build_vit_backbone(arch: ViT, image_size: int) -> tuple[nn.Module, int]:
    """Build a randomly initialised ViT for ``image_size`` inputs (no pooler; the [CLS] token is the feature).

    Returns:
        The backbone module and its feature width (``hidden_size``).
    """
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(
        image_size=image_size,
        patch_size=arch.patch_size,
        hidden_size=arch.hidden_size,
        num_hidden_layers=arch.num_hidden_layers,
        num_attention_heads=arch.num_attention_heads,
        intermediate_size=arch.intermediate_size,
        layer_norm_eps=arch.layer_norm_eps,
    )
    return ViTBackbone(ViTModel(config, add_pooling_layer=False)), arch.hidden_size
