"""Export: a model folder with provenance in ``config.json`` and a model card ``README.md``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from imgsent.models.sentiment import SentimentModel

_CARD = """---
library_name: imgsent
license: apache-2.0
pipeline_tag: image-classification
tags:
- image-sentiment
- polarity
- cross-modal-distillation
- imgsent
{metrics_yaml}---

# {name}

An image **sentiment polarity** classifier (negative / neutral / positive) for social-media
photos, made with `imgsent distill`: a frozen text-sentiment teacher read the text posted
with each image, and this vision student learned the teacher's verdict from the image alone.
No human labelled the training images.

```python
from imgsent import Predictor
predictor = Predictor.from_pretrained("{load_name}")
print(predictor.predict("photo.jpg")[0])
```

## Model

| | |
|---|---|
| architecture | `{architecture}` ({arch_args}) |
| input | {image_size}×{image_size} px, resize mode `{resize_mode}`, {interpolation}, mean {mean}, std {std} |
| outputs | probabilities of `negative`, `neutral`, `positive` (in this order) |
| weights | `model.safetensors` ({dtype}) |

## Training data and teacher

- Corpus: {corpus}
- Teacher: `{teacher}` (revision `{teacher_revision}`)
- Selection: {selection}

## Metrics

{metrics_md}

Accuracy uses the binary protocol of Serra et al. (ECAI 2023): the neutral output is dropped and
an image is called positive when p(positive) > p(negative).

## Intended use

Aggregate analysis of the mood of large collections of social-media images (research,
monitoring, dataset curation). Not for decisions about individual people.

## Limits

- **Weak labels.** Targets come from a text model reading the post, not from people looking at
  the image; the teacher's errors (sarcasm, negation, slang, emoji) are learned too.
- **Text that does not match its image.** A post's sentiment often concerns something the photo
  does not show; such pairs add noise the model cannot resolve.
- **Sarcasm and irony** cannot be seen in pixels.
- **Cultural context.** The polarity of symbols, gestures and events varies across cultures and
  over time; the training posts are English-language and from one period.
- **Neutral** is learned from few confident examples and is the least reliable output.
- **Data terms.** Corpora collected from Twitter/X are subject to its developer terms; images
  and texts are not redistributed with this model.

## Recipe

```json
{recipe}
```
"""


def export_model(
    model: SentimentModel,
    folder: str | os.PathLike[str],
    *,
    provenance: dict[str, Any],
    dtype: torch.dtype | None = None,
    name: str = "imgsent-student",
    load_name: str | None = None,
) -> Path:
    """Write the model folder: weights, ``config.json`` with ``provenance``, and a model card.

    Args:
        model: The trained model.
        folder: Destination folder.
        provenance: Teacher, corpus, recipe and metrics; stored in ``config.json``.
        dtype: Storage dtype for floating-point weights (``torch.float16`` halves the size).
        name: Title of the model card.
        load_name: How users load it (a Hub repo id); defaults to the folder path.

    Returns:
        The folder.
    """
    import json

    folder = Path(folder)
    exported = SentimentModel(dataclasses.replace(model.config, provenance=provenance), net=model.net)
    exported.save_pretrained(folder, dtype=dtype)
    cfg = exported.config
    metrics = provenance.get("metrics", {})
    (folder / "README.md").write_text(
        _CARD.format(
            name=name,
            load_name=load_name or str(folder),
            architecture=cfg.architecture.name,
            arch_args=", ".join(f"{k}={v}" for k, v in cfg.architecture.args.items()) or "defaults",
            image_size=cfg.preprocess.image_size,
            resize_mode=cfg.preprocess.resize_mode,
            interpolation=cfg.preprocess.interpolation,
            mean=list(cfg.preprocess.mean),
            std=list(cfg.preprocess.std),
            dtype=str(dtype or torch.float32).replace("torch.", ""),
            corpus=_short(provenance.get("corpus")),
            teacher=(provenance.get("teacher") or {}).get("id", "unknown"),
            teacher_revision=(provenance.get("teacher") or {}).get("revision", "unknown"),
            selection=_short(provenance.get("selection")),
            metrics_md=_metrics_markdown(metrics),
            metrics_yaml=_metrics_yaml(name, metrics),
            recipe=json.dumps(provenance.get("recipe", {}), indent=2, default=str),
        ),
        encoding="utf-8",
    )
    return folder


def _short(value: Any) -> str:
    import json

    if value is None:
        return "not recorded"
    return f"`{json.dumps(value, default=str)[:600]}`"


def _metrics_markdown(metrics: dict[str, Any]) -> str:
    if not metrics:
        return "No evaluation was recorded."
    lines = []
    crossval = metrics.get("crossval")
    if isinstance(crossval, dict) and isinstance(crossval.get("summary"), dict):
        lines += [f"{crossval.get('folds', '?')}-fold cross-validation: distilled on the other folds' captions, "
                  f"evaluated on each held-out fold's images against human labels ({crossval.get('dataset', 'see recipe')}).",
                  "", "| subset | accuracy (mean ± std over folds) |", "|---|---|"]
        for subset, value in crossval["summary"].items():
            lines.append(f"| {subset} | {100 * value['mean']:.1f} ± {100 * value['std']:.1f} % |")
        lines.append("")
        metrics = {k: v for k, v in metrics.items() if k != "crossval"}
    calibration = metrics.get("calibration")
    if isinstance(calibration, dict) and "ece_before" in calibration:
        lines += [f"Calibration: logits are divided by a temperature T = {calibration['temperature']:.3f} fitted on "
                  f"{calibration.get('heldout_images', '?')} held-out images against the teacher's labels "
                  f"({calibration.get('source', 'held out')}). Expected calibration error (15 bins) "
                  f"{100 * calibration['ece_before']:.1f} % before, {100 * calibration['ece_after']:.1f} % after.", ""]
    rows = _flatten(metrics)
    if not rows:
        return "\n".join(lines) if lines else "No evaluation was recorded."
    lines += ["| metric | value |", "|---|---|"]
    for key, value in rows:
        lines.append(f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |")
    return "\n".join(lines)


def _metrics_yaml(name: str, metrics: dict[str, Any]) -> str:
    values = [(k, v) for k, v in _flatten(metrics) if isinstance(v, float) and "accuracy" in k]
    crossval = metrics.get("crossval")
    if isinstance(crossval, dict) and isinstance(crossval.get("summary"), dict):
        values += [(f"crossval {subset}", v["mean"]) for subset, v in crossval["summary"].items()]
    if not values:
        return ""
    out = ["model-index:", f"- name: {name}", "  results:", "  - task: {type: image-classification}",
           "    dataset: {name: evaluation, type: custom}", "    metrics:"]
    out += [f"    - {{type: accuracy, name: {key}, value: {value:.4f}}}" for key, value in values]
    return "\n".join(out) + "\n"


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += _flatten(value, name + ".")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((name, value))
    return out
