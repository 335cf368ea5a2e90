"""Saliency maps: where the model looked for its predicted class.

* EfficientNet students: Grad-CAM on the last convolutional stage (after its batch norm and
  activation), the classic choice for CNNs.
* ViT students: Grad-CAM on the token output of the last encoder block's first layer norm; the
  patch tokens (without [CLS]) are reshaped to their spatial grid.

Both come from the maintained ``grad-cam`` package (``pip install 'imgsent[explain]'``). A map
is computed at the network's input size, mapped back through the model's resize mode, and
returned at the image's own size, so overlays keep the image's aspect ratio.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from imgsent.config import LABELS, PreprocessConfig
from imgsent.errors import ExplainError, ImgsentError, require_extra
from imgsent.images import load_image
from imgsent.registry import EfficientNetLite, ViT, get_architecture
from imgsent.transforms import normalize, preprocess

if TYPE_CHECKING:
    from imgsent.predictor import Predictor

_OVERLAY_MAX_SIDE = 768


@dataclass(frozen=True)
class ExplainedFile:
    """One image written by :func:`explain_files`: the overlay path, or why there is none."""

    source: str
    path: Path | None
    label: str | None
    confidence: float | None
    error: str | None = None


def explain_maps(predictor: Predictor, images: Sequence[Any], *, target: str | None = None) -> list[np.ndarray]:
    """Saliency maps for ``images`` (see :meth:`imgsent.Predictor.explain`)."""
    if target is not None and target not in LABELS:
        raise ExplainError(f"target must be one of {list(LABELS)} or None (the predicted label), got {target!r}.")
    return [_explain_one(predictor, load_image(image), target)[0] for image in images]


def explain_files(
    predictor: Predictor,
    paths: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    target: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[ExplainedFile]:
    """Write one overlay PNG per image into ``output``; an unreadable image is reported, not raised.

    Args:
        predictor: A loaded :class:`~imgsent.Predictor`.
        paths: Image files.
        output: Folder for ``<name>.png`` overlays (created if needed).
        target: Label to explain; ``None`` explains each image's predicted label.
        on_progress: Called with (images done, total).

    Returns:
        One :class:`ExplainedFile` per path, in order.
    """
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    results = []
    for done, source in enumerate(paths, 1):
        name = _unique_name(Path(source).stem or "image", used)
        try:
            image = load_image(source)
            heat, label, confidence = _explain_one(predictor, image, target)
            path = out / f"{name}.png"
            overlay(image, heat).save(path, optimize=True)
            results.append(ExplainedFile(str(source), path, label, confidence))
        except (ImgsentError, OSError) as exc:
            results.append(ExplainedFile(str(source), None, None, None, str(exc)))
        if on_progress is not None:
            on_progress(done, len(paths))
    return results


def overlay(image: Image.Image, heat: np.ndarray, *, max_side: int = _OVERLAY_MAX_SIDE) -> Image.Image:
    """The image (shrunk to ``max_side``, aspect ratio kept) with the map drawn over it in the jet colormap."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    shown = image.copy()
    shown.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    mask = np.asarray(Image.fromarray(heat).resize(shown.size, Image.Resampling.BILINEAR), dtype=np.float32)
    rgb = np.asarray(shown, dtype=np.float32) / 255.0
    return Image.fromarray(show_cam_on_image(rgb, np.clip(mask, 0.0, 1.0), use_rgb=True, image_weight=0.55))


def _explain_one(predictor: Predictor, image: Image.Image, target: str | None) -> tuple[np.ndarray, str, float]:
    require_extra("pytorch_grad_cam", "explain")
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cfg = predictor.config.preprocess
    net = _float_net(predictor)
    layer, reshape = _target_layer(predictor, net)
    pixels = normalize(preprocess(image, cfg).unsqueeze(0), cfg).to(next(net.parameters()).device)
    with torch.no_grad():
        probs = torch.softmax(net(pixels).float() / predictor.config.temperature, dim=-1)[0]
    index = int(probs.argmax()) if target is None else LABELS.index(target)
    with torch.enable_grad(), GradCAM(model=net, target_layers=[layer], reshape_transform=reshape) as cam:
        grid = cam(input_tensor=pixels, targets=[ClassifierOutputTarget(index)])[0]
    return _to_image_frame(np.asarray(grid, dtype=np.float32), image.size, cfg), LABELS[index], float(probs[index])


def _float_net(predictor: Predictor) -> torch.nn.Module:
    """The network in float32 (Grad-CAM needs gradients, which low precision distorts)."""
    net = predictor.model.net
    if next(net.parameters()).dtype != torch.float32:
        net = copy.deepcopy(net).float()
    return net.eval()


def _target_layer(predictor: Predictor, net: torch.nn.Module) -> tuple[torch.nn.Module, Callable[..., Any] | None]:
    backbone = get_architecture(predictor.config.architecture.name).backbone
    choose = _TARGET_LAYERS.get(type(backbone))
    if choose is None:
        supported = ", ".join(sorted(t.__name__ for t in _TARGET_LAYERS))
        raise ExplainError(f"No explanation method for {type(backbone).__name__} backbones; supported: {supported}.")
    return choose(predictor, net)


def _efficientnet_layer(predictor: Predictor, net: torch.nn.Module) -> tuple[torch.nn.Module, None]:
    """The last convolutional stage's batch norm: the final spatial feature map."""
    return net.backbone.bn2, None  # type: ignore[union-attr]


def _vit_layer(predictor: Predictor, net: torch.nn.Module) -> tuple[torch.nn.Module, Callable[..., Any]]:
    """The last block's first LayerNorm, with the patch tokens reshaped to a grid."""
    vit = net.backbone.vit  # type: ignore[union-attr]
    side = predictor.config.preprocess.image_size // vit.config.patch_size
    blocks = vit.layers if hasattr(vit, "layers") else vit.encoder.layer  # transformers 5 moved the blocks
    return blocks[-1].layernorm_before, _vit_reshape(side)


def _vit_reshape(side: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        grid = tokens[:, 1:, :].reshape(tokens.size(0), side, side, tokens.size(2))
        return grid.permute(0, 3, 1, 2)

    return reshape


def _to_image_frame(grid: np.ndarray, size: tuple[int, int], cfg: PreprocessConfig) -> np.ndarray:
    """Map an input-sized map back onto the original image (undoing squash, crop or letterbox)."""
    width, height = size
    s = cfg.image_size
    if cfg.resize_mode == "squash":
        region = grid
    elif cfg.resize_mode == "letterbox":
        scale = s / max(width, height)
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
        left, top = (s - w) // 2, (s - h) // 2
        region = grid[top : top + h, left : left + w]
    else:  # crop: the map covers the centred square; the cut-off sides get zero
        scale = s / min(width, height)
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
        full = np.zeros((h, w), dtype=np.float32)
        left, top = (w - s) // 2, (h - s) // 2
        full[top : top + s, left : left + s] = grid
        region = full
    heat = Image.fromarray(np.ascontiguousarray(region, dtype=np.float32)).resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(heat, dtype=np.float32), 0.0, 1.0)


def _unique_name(stem: str, used: set[str]) -> str:
    name, n = stem, 1
    while name in used:
        n += 1
        name = f"{stem}-{n}"
    used.add(name)
    return name


_TARGET_LAYERS: dict[type, Callable[[Predictor, torch.nn.Module], tuple[torch.nn.Module, Callable[..., Any] | None]]] = {
    EfficientNetLite: _efficientnet_layer,
    ViT: _vit_layer,
}
"""Where Grad-CAM looks, per backbone record type (the same keys as the builders table)."""
