"""EfficientNet-Lite backbones, taken from timm's TensorFlow-compatible implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from imgsent.registry import EfficientNetLite


def build_efficientnet_backbone(arch: EfficientNetLite, image_size: int) -> tuple[nn.Module, int]:
    """Build a timm EfficientNet-Lite without its classifier; it returns pooled features.

    The network is fully convolutional, so ``image_size`` does not change it.

    Returns:
        The backbone module and its feature width (1280).
    """
    import timm

    model = timm.create_model(arch.timm_name, pretrained=False, num_classes=0)
    return model, int(model.num_features)
