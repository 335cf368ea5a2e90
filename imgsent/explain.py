"""Saliency maps: where the model looked for a label, and overlays that show it.

* EfficientNet students: Grad-CAM on the last convolutional stage (after its batch norm and
  activation), the classic choice for CNNs.
* ViT students: Grad-CAM on the token output of the last encoder block's first layer norm; the
  patch tokens (without [CLS]) are reshaped to their spatial grid.

Both come from the maintained ``grad-cam`` package (``pip install 'imgsent[explain]'``).
:meth:`imgsent.Predictor.explain` decodes, runs and labels the images with its own pipeline (the
same batches, engine, temperature and :class:`~imgsent.Prediction` as ``predict``); this module
only adds the map. Grad-CAM differentiates the network's logit for the explained label, so the
temperature, which does not change which label wins, plays no part in it. A map is computed at
the network's input size, mapped back through the model's resize mode, and returned at the
image's own size, so overlays keep the image's aspect ratio.
"""

from __future__ import annotations

import copy
import os
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from imgsent.config import LABELS, ModelConfig, PreprocessConfig
from imgsent.data import DecodedBatch
from imgsent.errors import ExplainError, ImgsentError, require_extra
from imgsent.images import load_image
from imgsent.outputs import Prediction
from imgsent.registry import EfficientNetLite, ViT, get_architecture
from imgsent.transforms import normalize

_PANEL = 512
_MARGIN = 12
_MIN_WIDTH = 520
_FLOAT_COPIES: weakref.WeakKeyDictionary[torch.nn.Module, torch.nn.Module] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Explanation:
    """One explained image.

    Attributes:
        prediction: The same :class:`~imgsent.Prediction` that ``Predictor.predict`` gives for the image.
        heatmap: float32 ``[height, width]`` in [0, 1] at the image's displayed size (EXIF orientation
            applied); ``None`` when the image could not be read (``prediction.error`` says why).
        target: The label the map explains; ``None`` with no map.
    """

    prediction: Prediction
    heatmap: np.ndarray | None
    target: str | None


@dataclass(frozen=True)
class ExplainedFile:
    """One image written by :func:`explain_files`: the overlay path, or why there is none."""

    source: str
    path: Path | None
    label: str | None
    confidence: float | None
    error: str | None = None


class Explainer(Protocol):
    """What :func:`explain_files` needs: :meth:`imgsent.Predictor.iter_explain`."""

    def iter_explain(self, images: Iterable[Any], *, target: str | None = None) -> Iterator[Explanation]: ...


def check_target(target: str | None) -> None:
    """Raise :class:`~imgsent.errors.ExplainError` unless ``target`` is a label or ``None``."""
    if target is not None and target not in LABELS:
        raise ExplainError(f"target must be one of {list(LABELS)} or None (the predicted label), got {target!r}.")


def float_network(network: torch.nn.Module) -> torch.nn.Module:
    """``network`` itself when it is float32, else its float32 copy, made once and kept while ``network`` lives
    (Grad-CAM needs float32 gradients)."""
    if next(network.parameters()).dtype == torch.float32:
        return network
    if network not in _FLOAT_COPIES:
        _FLOAT_COPIES[network] = copy.deepcopy(network).float()
    return _FLOAT_COPIES[network]


def explain_batch(
    network: torch.nn.Module,
    config: ModelConfig,
    batch: DecodedBatch,
    predictions: list[Prediction],
    *,
    target: str | None = None,
) -> list[Explanation]:
    """Grad-CAM maps for one decoded batch whose ``predictions`` the predictor already made.

    Args:
        network: The float32 network (``SentimentModel.net``); its gradients are cleared afterwards.
        config: The model's config (architecture and preprocessing).
        batch: The batch the predictions were made from.
        predictions: ``Predictor.postprocess`` of the batch, one per input.
        target: The label to explain; ``None`` explains each prediction's most probable label.

    Returns:
        One :class:`Explanation` per input, in order.
    """
    require_extra("pytorch_grad_cam", "explain")
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    check_target(target)
    decoded = [p for p in predictions if p.error is None]
    labels = [target or _top_label(p) for p in decoded]
    grids: np.ndarray = np.empty((0,))
    if decoded:
        layer, reshape = _target_layer(config, network)
        device = next(network.parameters()).device
        pixels = normalize(batch.pixels.to(device), config.preprocess).requires_grad_(True)
        try:
            with torch.inference_mode(False), torch.enable_grad(), \
                    GradCAM(model=network.eval(), target_layers=[layer], reshape_transform=reshape) as cam:
                grids = cam(input_tensor=pixels, targets=[ClassifierOutputTarget(LABELS.index(lab)) for lab in labels])
        finally:
            network.zero_grad(set_to_none=True)
    out, rows = [], iter(range(len(decoded)))
    for prediction, size in zip(predictions, batch.sizes):
        if prediction.error is not None or size is None:
            out.append(Explanation(prediction, None, None))
            continue
        row = next(rows)
        heat = _to_image_frame(np.asarray(grids[row], dtype=np.float32), size, config.preprocess)
        out.append(Explanation(prediction, heat, labels[row]))
    return out


def explain_files(
    predictor: Explainer,
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
        output: Folder for ``<name>.png`` overlays (created if needed); equal stems get ``-2``, ``-3``...
        target: Label to explain; ``None`` explains each image's predicted label.
        on_progress: Called with (images done, total) after each image.

    Returns:
        One :class:`ExplainedFile` per path, in order.
    """
    check_target(target)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    results = []
    for done, (source, item) in enumerate(zip(paths, predictor.iter_explain(list(paths), target=target)), 1):
        name = _unique_name(Path(source).stem or "image", used)
        prediction = item.prediction
        try:
            if item.heatmap is None:
                raise ExplainError(prediction.error or "no map")
            path = out / f"{name}.png"
            overlay(load_image(source, draft_size=(_PANEL, _PANEL)), item).save(path, optimize=True)
            results.append(ExplainedFile(str(source), path, prediction.label, prediction.confidence))
        except (ImgsentError, OSError) as exc:
            results.append(ExplainedFile(str(source), None, None, None, str(exc)))
        if on_progress is not None:
            on_progress(done, len(paths))
    return results


def overlay(image: Image.Image, explanation: Explanation, *, panel: int = _PANEL) -> Image.Image:
    """The image and its heat map side by side, with the label, the calibrated confidence and a colour scale.

    Args:
        image: The RGB image (any size; shrunk to fit ``panel``, aspect ratio kept).
        explanation: Its :class:`Explanation` (with a heat map).
        panel: Longest side of each of the two panels, in pixels.

    Returns:
        An RGB image: a caption line (label, calibrated confidence, and the explained label when it
        differs), the original on the left, the map drawn over a dimmed grey copy of the image on
        the right, and the 0-1 colour scale under them.

    Raises:
        ExplainError: The explanation has no heat map.
    """
    if explanation.heatmap is None:
        raise ExplainError(f"No heat map for {explanation.prediction.source}: {explanation.prediction.error}")
    shown = image.convert("RGB")
    scale = panel / max(shown.size)  # small images are enlarged too, so captions always fit
    shown = shown.resize((max(1, round(shown.width * scale)), max(1, round(shown.height * scale))), Image.Resampling.LANCZOS)
    heat = np.asarray(Image.fromarray(explanation.heatmap).resize(shown.size, Image.Resampling.BILINEAR), np.float32)
    grey = np.asarray(shown.convert("L").convert("RGB"), np.float32) / 255.0
    mixed = 0.35 * grey + 0.65 * colormap(np.clip(heat, 0.0, 1.0))
    heat_panel = Image.fromarray(np.rint(mixed * 255.0).astype(np.uint8))

    font, small = ImageFont.load_default(size=18), ImageFont.load_default(size=13)
    width, height = shown.size
    header, bar = 34, 14
    canvas_width = max(2 * width + 3 * _MARGIN, _MIN_WIDTH)
    canvas = Image.new("RGB", (canvas_width, header + height + 3 * _MARGIN + 24 + bar + 18), (255, 255, 255))
    canvas.paste(shown, (_MARGIN, header + _MARGIN))
    canvas.paste(heat_panel, (2 * _MARGIN + width, header + _MARGIN))
    draw = ImageDraw.Draw(canvas)
    draw.text((_MARGIN, 8), _caption(explanation), fill=(20, 20, 20), font=font)
    top = header + 2 * _MARGIN + height
    draw.text((_MARGIN, top), f"Grad-CAM: how much each region raised the '{explanation.target}' score",
              fill=(40, 40, 40), font=small)
    top += 22
    left, right = _MARGIN, canvas_width - _MARGIN
    ramp = colormap(np.linspace(0.0, 1.0, right - left, dtype=np.float32)[None, :].repeat(bar, 0))
    canvas.paste(Image.fromarray(np.rint(ramp * 255.0).astype(np.uint8)), (left, top))
    draw.rectangle((left - 1, top - 1, right, top + bar), outline=(90, 90, 90))
    for value, anchor, text in ((0.0, "la", "0 (none)"), (0.5, "ma", "0.5"), (1.0, "ra", "1 (most)")):
        draw.text((left + value * (right - left), top + bar + 3), text, fill=(40, 40, 40), font=small, anchor=anchor)
    return canvas


def colormap(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB in [0, 1] with the jet colour scale (blue, cyan, yellow, red); adds a last axis of 3."""
    x = np.clip(np.asarray(values, np.float32), 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25], np.float32)  # red, green, blue
    return np.clip(1.5 - np.abs(4.0 * (x - centres)), 0.0, 1.0)


def _caption(explanation: Explanation) -> str:
    prediction = explanation.prediction
    text = f"{prediction.label}    confidence {prediction.confidence:.2f} (calibrated)"
    if explanation.target is not None and explanation.target != prediction.label:
        text += f"   map for: {explanation.target}"
    return text


def _top_label(prediction: Prediction) -> str:
    """The label with the highest probability (also when the prediction is ``uncertain``)."""
    probs = (prediction.negative or 0.0, prediction.neutral or 0.0, prediction.positive or 0.0)
    return prediction.label if prediction.label in LABELS else LABELS[int(np.argmax(probs))]


def _target_layer(config: ModelConfig, net: torch.nn.Module) -> tuple[torch.nn.Module, Callable[..., Any] | None]:
    backbone = get_architecture(config.architecture.name).backbone
    choose = _TARGET_LAYERS.get(type(backbone))
    if choose is None:
        supported = ", ".join(sorted(t.__name__ for t in _TARGET_LAYERS))
        raise ExplainError(f"No explanation method for {type(backbone).__name__} backbones; supported: {supported}.")
    return choose(config, net)


def _efficientnet_layer(config: ModelConfig, net: torch.nn.Module) -> tuple[torch.nn.Module, None]:
    """The last convolutional stage's batch norm: the final spatial feature map."""
    return net.backbone.bn2, None  # type: ignore[union-attr]


def _vit_layer(config: ModelConfig, net: torch.nn.Module) -> tuple[torch.nn.Module, Callable[..., Any]]:
    """The last block's first LayerNorm, with the patch tokens reshaped to a grid."""
    vit = net.backbone.vit  # type: ignore[union-attr]
    side = config.preprocess.image_size // vit.config.patch_size
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


_TARGET_LAYERS: dict[type, Callable[[ModelConfig, torch.nn.Module], tuple[torch.nn.Module, Callable[..., Any] | None]]] = {
    EfficientNetLite: _efficientnet_layer,
    ViT: _vit_layer,
}
"""Where Grad-CAM looks, per backbone record type (the same keys as the builders table)."""
