"""The student network: a backbone that returns pooled features, and the paper's head."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imgsent.config import WEIGHTS_NAME, ArchitectureConfig, ModelConfig
from imgsent.models.efficientnet import build_efficientnet_backbone
from imgsent.models.vit import build_vit_backbone
from imgsent.registry import EfficientNetLite, ViT, resolve_backbone

NUM_CLASSES = 3


class PaperHead(nn.Module):
    """The paper's classifier head: Linear(D, hidden) -> GELU -> Linear(hidden, 3).

    With ``hidden=0`` it is a single linear layer. ``activation="gelu_tanh"`` is the tanh
    approximation of GELU used by the authors' Keras heads (``tensorflow_addons`` default).
    """

    def __init__(self, in_features: int, *, hidden: int = 32, dropout: float = 0.0, activation: str = "gelu") -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout > 0 else []
        if hidden > 0:
            act = nn.GELU(approximate="tanh" if activation == "gelu_tanh" else "none")
            layers += [nn.Linear(in_features, hidden), act, nn.Linear(hidden, NUM_CLASSES)]
        else:
            layers += [nn.Linear(in_features, NUM_CLASSES)]
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class SentimentNet(nn.Module):
    """Backbone plus head. ``forward`` maps normalised images [B, 3, H, W] to logits [B, 3]."""

    def __init__(
        self, backbone: nn.Module, feature_dim: int, *, head_hidden: int = 32, dropout: float = 0.0,
        head_activation: str = "gelu",
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.head = PaperHead(feature_dim, hidden=head_hidden, dropout=dropout, activation=head_activation)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features, shape [B, feature_dim]."""
        return self.backbone(pixels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(pixels))


BackboneBuilder = Callable[[Any, int], tuple[nn.Module, int]]

BUILDERS: dict[type, BackboneBuilder] = {
    EfficientNetLite: build_efficientnet_backbone,
    ViT: build_vit_backbone,
}
"""The one builders table: backbone record type -> builder of ``(module, feature width)``."""


def build_network(arch: ArchitectureConfig, image_size: int) -> SentimentNet:
    """Build a randomly initialised network from an architecture record.

    Args:
        arch: The architecture name and arguments (validated when the record was made).
        image_size: Side of the square input in pixels: the model's ``preprocess.image_size``.

    Returns:
        A :class:`SentimentNet` in training mode, with random weights.

    Example:
        >>> net = build_network(ArchitectureConfig("efficientnet_lite0"), 224)
        >>> net(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 3])
    """
    backbone_record = resolve_backbone(arch.name, arch.args)
    backbone, dim = BUILDERS[type(backbone_record)](backbone_record, image_size)
    head_hidden = int(arch.args.get("head_hidden", 32))
    dropout = float(arch.args.get("dropout", 0.0))
    activation = str(arch.args.get("head_activation", "gelu"))
    return SentimentNet(backbone, dim, head_hidden=head_hidden, dropout=dropout, head_activation=activation)


def save_model_folder(
    net: nn.Module, config: ModelConfig, folder: str | os.PathLike[str], *, dtype: torch.dtype | None = None
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (the weights of ``net``) into ``folder``.

    The weights are written to a temporary name and renamed, so a reader never sees half a file.
    ``dtype`` stores floating-point weights in that dtype; loading converts back to float32.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for key, tensor in net.state_dict().items():
        tensor = tensor.detach().cpu()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        state[key] = tensor.contiguous()
    tmp = folder / (WEIGHTS_NAME + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt", "library": "imgsent"})
    os.replace(tmp, folder / WEIGHTS_NAME)
    os.chmod(folder / WEIGHTS_NAME, 0o644)
    config.save(folder)
    return folder
