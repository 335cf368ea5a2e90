"""The records that describe a model folder, and their JSON form.

A model folder holds ``config.json`` and ``model.safetensors``. The config keeps
three things apart, as open_clip and timm do:

* :class:`ArchitectureConfig`: how to build the network;
* :class:`PreprocessConfig`: how to feed it (stored with the weights, not with the architecture);
* labels and provenance: what the outputs mean and where the weights came from.

``config.json`` is untrusted input (it may come from any Hub repo), so
:meth:`ModelConfig.from_dict` checks every type and range before anything is built.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from imgsent.errors import InvalidConfigError

FORMAT_VERSION = 1
LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

ResizeMode = Literal["squash", "crop", "letterbox"]
Interpolation = Literal["nearest", "bilinear", "bicubic", "lanczos"]
RESIZE_MODES: tuple[str, ...] = ("squash", "crop", "letterbox")
INTERPOLATIONS: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "lanczos")


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
        jpeg_draft: ``True`` (default) lets large JPEGs decode at a reduced scale before the
            resize (much faster). ``False`` always decodes every pixel.

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


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild and feed a model, stored as ``config.json``.

    Args:
        architecture: How to build the network.
        preprocess: How to feed it.
        labels: Output names, always ``("negative", "neutral", "positive")``.
        provenance: Free metadata: teacher, corpus, recipe, metrics.
        format_version: Version of this file format.

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
        from imgsent.registry import validate_architecture

        _expect(data, dict, "config")
        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or version != FORMAT_VERSION:
            raise InvalidConfigError(
                f"config.json has format_version={version!r}; this imgsent reads version "
                f"{FORMAT_VERSION}. Upgrade imgsent or re-export the model."
            )
        arch = _expect(data.get("architecture"), dict, "architecture")
        name = _expect(arch.get("name"), str, "architecture.name")
        args = _expect(arch.get("args", {}), dict, "architecture.args")
        architecture = ArchitectureConfig(name=name, args=dict(args))
        validate_architecture(architecture)
        labels = tuple(_expect(data.get("labels", list(LABELS)), list, "labels"))
        if labels != LABELS:
            raise InvalidConfigError(
                f"labels must be {list(LABELS)} in this order, got {list(labels)!r}."
            )
        provenance = _expect(data.get("provenance", {}), dict, "provenance")
        return cls(
            architecture=architecture,
            preprocess=_preprocess_from_dict(data.get("preprocess", {})),
            labels=labels,
            provenance=provenance,
            format_version=version,
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


def _preprocess_from_dict(data: Any) -> PreprocessConfig:
    _expect(data, dict, "preprocess")
    default = PreprocessConfig()
    size = data.get("image_size", default.image_size)
    if not isinstance(size, int) or isinstance(size, bool) or not 16 <= size <= 2048:
        raise InvalidConfigError(f"preprocess.image_size must be an integer in [16, 2048], got {size!r}.")
    mode = data.get("resize_mode", default.resize_mode)
    if mode not in RESIZE_MODES:
        raise InvalidConfigError(f"preprocess.resize_mode must be one of {list(RESIZE_MODES)}, got {mode!r}.")
    interp = data.get("interpolation", default.interpolation)
    if interp not in INTERPOLATIONS:
        raise InvalidConfigError(
            f"preprocess.interpolation must be one of {list(INTERPOLATIONS)}, got {interp!r}."
        )
    mean = _triple(data.get("mean", list(default.mean)), "preprocess.mean", positive=False)
    std = _triple(data.get("std", list(default.std)), "preprocess.std", positive=True)
    flags = {}
    for key in ("resize_antialias", "jpeg_draft"):
        flags[key] = data.get(key, getattr(default, key))
        if not isinstance(flags[key], bool):
            raise InvalidConfigError(f"preprocess.{key} must be true or false, got {flags[key]!r}.")
    if not flags["resize_antialias"] and interp == "lanczos":
        raise InvalidConfigError(
            "preprocess.resize_antialias=false needs interpolation 'bilinear', 'bicubic' or 'nearest', got 'lanczos'."
        )
    return PreprocessConfig(size, mode, interp, mean, std, **flags)  # type: ignore[arg-type]


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
