"""ViT backbones from transformers, as the paper's students."""

from __future__ import annotations

import torch
from torch import nn


class ViTBackbone(nn.Module):
    """A transformers ``ViTModel`` returning the final-layer-normed [CLS] token."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.vit = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.vit(pixel_values=pixels, interpolate_pos_encoding=False)
        return out.last_hidden_state[:, 0]


def build_vit_backbone(
    *,
    patch_size: int,
    hidden_size: int,
    num_hidden_layers: int,
    num_attention_heads: int,
    intermediate_size: int,
    image_size: int,
    layer_norm_eps: float = 1e-12,
) -> tuple[nn.Module, int]:
    """Build a randomly initialised ViT from a config (no pooler; the [CLS] token is the feature).

    Returns:
        The backbone module and its feature width (``hidden_size``).
    """
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(
        image_size=image_size,
        patch_size=patch_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size,
        layer_norm_eps=layer_norm_eps,
    )
    return ViTBackbone(ViTModel(config, add_pooling_layer=False)), hidden_size
