"""The records that describe a model folder, and their JSON form.

A model folder holds ``config.json`` and ``model.safetensors``. The config keeps
three things apart, as open_clip and timm do:

* :class:`ArchitectureConfig`: how to build the network;
* :class:`PreprocessConfig`: how to feed it (stored with the weights, not with the architecture);
* labels and provenance: what the outputs mean and where the weights came from.

``config.json`` is untrusted input (it may come from any Hub repo). Every record checks its
types and ranges when it is constructed, through :class:`imgsent.checks.Range`, so a record
that exists is valid; :meth:`ModelConfig.from_dict` only checks the JSON's shape on top.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from imgsent.checks import Range, check_choice
from imgsent.errors import InvalidConfigError
from imgsent.registry import resolve_backbone

FORMAT_VERSION = 1
LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

ResizeMode = Literal["squash", "crop", "letterbox"]
Interpolation = Literal["nearest", "bilinear", "bicubic", "lanczos"]
RESIZE_MODES: tuple[str, ...] = ("squash", "crop", "letterbox")
INTERPOLATIONS: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "lanczos")
IMAGE_SIZE = Range(int, 16, 2048)
TEMPERATURE = Range(float, 0.01, 100.0)
REDUCING_GAP = Range(float, 1.0, 100.0)


@dataclass(frozen=True)
class ArchitectureConfig:
    """How to build the network.

    Args:
        name: A name from :data:`imgsent.registry.ARCHITECTURES`, e.g. ``"efficientnet_lite0"``.
        args: Keyword arguments for that architecture's builder (e.g. ``head_hidden``).

    Example:
        >>> ArchitectureConfig("vit_b16", {"image_size": 224})
        ArchitectureConfig(name='vit_b16', args={'image_size': 224})
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the name and every argument against the registry.

        Raises:
            UnknownArchitectureError: The name is not registered; the message lists valid names.
            InvalidConfigError: An argument is unknown, of the wrong type, or out of range.
        """
        resolve_backbone(self.name, self.args)


@dataclass(frozen=True)
class PreprocessConfig:
    """How to turn a decoded RGB image into the network's input tensor.

    Args:
        image_size: Side of the square input, in pixels.
        resize_mode: ``"squash"`` resizes to a square without cropping (the paper's choice),
            ``"crop"`` resizes the short side then centre-crops, ``"letterbox"`` pads to a square.
        interpolation: Resampling filter used when resizing.
        mean: Per-channel mean subtracted from values in [0, 1].
        std: Per-channel divisor applied after the mean. ``mean=std=0.5`` scales to [-1, 1].
        resize_antialias: ``True`` (default) resizes with Pillow, which low-pass filters when
            shrinking. ``False`` resizes the float image without antialiasing, exactly as
            ``tf.image.resize`` does (the authors' Keras models); it needs ``interpolation``
            ``"bilinear"``, ``"bicubic"`` or ``"nearest"``.
        jpeg_draft: ``True`` (default) lets JPEGs decode at a reduced scale (DCT scaling by 1/2,
            1/4 or 1/8, Pillow's ``Image.draft("RGB", (image_size, image_size))``) as long as both
            sides stay at least ``image_size``, before the resize (much faster on large photos).
            ``False`` always decodes every pixel.
        reducing_gap: Pillow's ``reducing_gap`` for antialiased resizes (default 3.0): the image
            is first shrunk by an integer factor with box averaging while it stays at least
            ``reducing_gap`` times the target size, then resampled with ``interpolation``.
            ``None`` resamples the whole image in one step (slower on large images). Unused
            when ``resize_antialias`` is false.

    EXIF orientation, transparency (composited on white) and high bit depths are decoded by the
    fixed rules of :mod:`imgsent.images`, which every model shares.

    Example:
        >>> PreprocessConfig(image_size=384).resize_mode
        'squash'
    """

    image_size: int = 224
    resize_mode: ResizeMode = "squash"
    interpolation: Interpolation = "bicubic"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    resize_antialias: bool = True
    jpeg_draft: bool = True
    reducing_gap: float | None = 3.0

    def __post_init__(self) -> None:
        """Check every field; ``mean`` and ``std`` may be given as lists.

        Raises:
            InvalidConfigError: A field has the wrong type or is out of range.
        """
        IMAGE_SIZE.check(self.image_size, "preprocess.image_size")
        check_choice(self.resize_mode, RESIZE_MODES, "preprocess.resize_mode")
        check_choice(self.interpolation, INTERPOLATIONS, "preprocess.interpolation")
        object.__setattr__(self, "mean", _triple(self.mean, "preprocess.mean", positive=False))
        object.__setattr__(self, "std", _triple(self.std, "preprocess.std", positive=True))
        for key in ("resize_antialias", "jpeg_draft"):
            if not isinstance(getattr(self, key), bool):
                raise InvalidConfigError(f"preprocess.{key} must be true or false, got {getattr(self, key)!r}.")
        if self.reducing_gap is not None:
            object.__setattr__(self, "reducing_gap", float(REDUCING_GAP.check(self.reducing_gap, "preprocess.reducing_gap")))
        if not self.resize_antialias and self.interpolation == "lanczos":
            raise InvalidConfigError(
                "preprocess.resize_antialias=false needs interpolation 'bilinear', 'bicubic' or 'nearest', got 'lanczos'."
            )


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild and feed a model, stored as ``config.json``.

    Args:
        architecture: How to build the network.
        preprocess: How to feed it.
        labels: Output names, always ``("negative", "neutral", "positive")``.
        provenance: Free metadata: teacher, corpus, recipe, metrics.
        format_version: Version of this file format.
        temperature: Logits are divided by it before the softmax, so probabilities are calibrated
            (fitted by ``imgsent distill`` on held-out teacher labels). Optional in
            ``config.json``; 1.0 (no change) when absent.

    Example:
        >>> cfg = ModelConfig(ArchitectureConfig("efficientnet_lite0"), PreprocessConfig())
        >>> ModelConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    architecture: ArchitectureConfig
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    labels: tuple[str, ...] = LABELS
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    temperature: float = 1.0

    def __post_init__(self) -> None:
        """Check the labels, the version, and that a ViT's legacy ``image_size`` argument fits the input size.

        Raises:
            InvalidConfigError: A value is wrong; the message says which and how to fix it.
        """
        _check_version(self.format_version)
        object.__setattr__(self, "labels", tuple(self.labels))
        if self.labels != LABELS:
            raise InvalidConfigError(f"labels must be {list(LABELS)} in this order, got {list(self.labels)!r}.")
        _expect(self.provenance, dict, "provenance")
        object.__setattr__(self, "temperature", float(TEMPERATURE.check(self.temperature, "temperature")))
        legacy = self.architecture.args.get("image_size", self.preprocess.image_size)
        if legacy != self.preprocess.image_size:
            raise InvalidConfigError(
                f"preprocess.image_size ({self.preprocess.image_size}) must equal the ViT's "
                f"architecture image_size ({legacy}). The input size is preprocess.image_size; "
                "drop architecture.args.image_size or make the two equal."
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form of this config."""
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["preprocess"]["mean"] = list(self.preprocess.mean)
        data["preprocess"]["std"] = list(self.preprocess.std)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ModelConfig:
        """Validate untrusted data and build a config.

        Raises:
            InvalidConfigError: A key is missing, has the wrong type or is out of range.
            UnknownArchitectureError: The architecture name is not registered.
        """
        _expect(data, dict, "config")
        _check_version(data.get("format_version", FORMAT_VERSION))  # before anything a newer version may have changed
        arch = _expect(data.get("architecture"), dict, "architecture")
        preprocess = _expect(data.get("preprocess", {}), dict, "preprocess")
        known = {f.name for f in dataclasses.fields(PreprocessConfig)}
        return cls(
            architecture=ArchitectureConfig(
                name=_expect(arch.get("name"), str, "architecture.name"),
                args=dict(_expect(arch.get("args", {}), dict, "architecture.args")),
            ),
            preprocess=PreprocessConfig(**{k: v for k, v in preprocess.items() if k in known}),
            labels=tuple(_expect(data.get("labels", list(LABELS)), list, "labels")),
            provenance=_expect(data.get("provenance", {}), dict, "provenance"),
            format_version=data.get("format_version", FORMAT_VERSION),
            temperature=data.get("temperature", 1.0),
        )

    def save(self, folder: str | Path) -> Path:
        """Write ``config.json`` into ``folder`` and return its path."""
        path = Path(folder) / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ModelConfig:
        """Read and validate ``config.json`` from ``folder``.

        Raises:
            InvalidConfigError: The file is not valid JSON or fails validation.
        """
        path = Path(folder) / CONFIG_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidConfigError(f"{path} is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def _check_version(version: Any) -> None:
    if not isinstance(version, int) or isinstance(version, bool) or version != FORMAT_VERSION:
        raise InvalidConfigError(
            f"config.json has format_version={version!r}; this imgsent reads version "
            f"{FORMAT_VERSION}. Upgrade imgsent or re-export the model."
        )


def _triple(value: Any, where: str, *, positive: bool) -> tuple[float, float, float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 3
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if ok and positive:
        ok = all(v > 0 for v in value)
    if not ok:
        kind = "positive finite numbers" if positive else "finite numbers"
        raise InvalidConfigError(f"{where} must be a list of 3 {kind}, got {value!r}.")
    return (float(value[0]), float(value[1]), float(value[2]))


def _expect(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        raise InvalidConfigError(
            f"config.json: {where} must be a {kind.__name__}, got {type(value).__name__} ({value!r:.80})."
        )
    return value


def trained_labels(config: ModelConfig) -> tuple[str, ...]:
    """The labels a model saw training examples of, from ``provenance.selection.images``.

    A model distilled with no neutral examples still has a neutral output, but it is never the
    largest: such a model is binary in practice. Without that provenance, all labels are assumed.

    Example:
        >>> from imgsent.models.sentiment import SentimentModel
        >>> trained_labels(SentimentModel.from_pretrained().config)
        ('negative', 'positive')
    """
    counts = config.provenance.get("selection", {}).get("images") if isinstance(config.provenance, dict) else None
    if not isinstance(counts, dict):
        return tuple(config.labels)
    return tuple(label for label in config.labels if isinstance(counts.get(label), int) and counts[label] > 0)
