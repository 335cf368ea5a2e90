"""EfficientNet-Lite backbones, taken from timm's TensorFlow-compatible implementation."""

from __future__ import annotations

from torch import nn


def build_efficientnet_backbone(timm_name: str) -> tuple[nn.Module, int]:
    """Build a timm EfficientNet-Lite without its classifier; it returns pooled features.

    Returns:
        The backbone module and its feature width (1280).
    """
    import timm

    model = timm.create_model(timm_name, pretrained=False, num_classes=0)
    return model, int(model.num_features)
