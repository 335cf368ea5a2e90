"""The explicit registries: architectures that can be built, and models known by name.

Both are plain dict literals. Nothing registers itself at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imgsent.config import ArchitectureConfig
from imgsent.errors import InvalidConfigError, UnknownArchitectureError


@dataclass(frozen=True)
class ArgSpec:
    """Type and inclusive range of one architecture argument."""

    kind: type
    low: float = 0
    high: float = 0
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArchitectureSpec:
    """A buildable architecture: the family, its fixed settings and the arguments users may set."""

    family: str
    fixed: dict[str, Any]
    args: dict[str, ArgSpec]
    default_image_size: int
    description: str


_HEAD_ARGS = {
    "head_hidden": ArgSpec(int, 0, 4096),
    "dropout": ArgSpec(float, 0.0, 0.9),
    "head_activation": ArgSpec(str, choices=("gelu", "gelu_tanh")),
}
_VIT_ARGS = {
    **_HEAD_ARGS,
    "image_size": ArgSpec(int, 16, 1024),
    "hidden_size": ArgSpec(int, 8, 4096),
    "num_hidden_layers": ArgSpec(int, 1, 64),
    "num_attention_heads": ArgSpec(int, 1, 64),
    "intermediate_size": ArgSpec(int, 8, 16384),
    "patch_size": ArgSpec(int, 1, 64),
    "layer_norm_eps": ArgSpec(float, 1e-12, 1e-3),
}

ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "efficientnet_lite0": ArchitectureSpec(
        "efficientnet", {"timm_name": "tf_efficientnet_lite0"}, _HEAD_ARGS, 224, "EfficientNet-Lite0, 3.4 M params"
    ),
    "efficientnet_lite1": ArchitectureSpec(
        "efficientnet", {"timm_name": "tf_efficientnet_lite1"}, _HEAD_ARGS, 240, "EfficientNet-Lite1, 4.2 M params"
    ),
    "efficientnet_lite2": ArchitectureSpec(
        "efficientnet", {"timm_name": "tf_efficientnet_lite2"}, _HEAD_ARGS, 260, "EfficientNet-Lite2, 4.9 M params"
    ),
    "vit_b32": ArchitectureSpec(
        "vit", {"patch_size": 32, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                "intermediate_size": 3072, "hub_id": "google/vit-base-patch32-224-in21k"},
        _VIT_ARGS, 224, "ViT-B/32 (paper student)",
    ),
    "vit_b16": ArchitectureSpec(
        "vit", {"patch_size": 16, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                "intermediate_size": 3072, "hub_id": "google/vit-base-patch16-224-in21k"},
        _VIT_ARGS, 384, "ViT-B/16 (paper student)",
    ),
    "vit_l32": ArchitectureSpec(
        "vit", {"patch_size": 32, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                "intermediate_size": 4096, "hub_id": "google/vit-large-patch32-224-in21k"},
        _VIT_ARGS, 384, "ViT-L/32 (paper student)",
    ),
    "vit_l16": ArchitectureSpec(
        "vit", {"patch_size": 16, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                "intermediate_size": 4096, "hub_id": "google/vit-large-patch16-224-in21k"},
        _VIT_ARGS, 384, "ViT-L/16 (paper's best student)",
    ),
}

# Models known by a short name: name -> Hub repo id, or "package:<folder>" for weights shipped in the wheel.
# "paper:<name>" is one of the authors' Keras students, see imgsent.convert.paper.PAPER_MODELS.
KNOWN_MODELS: dict[str, str] = {
    "default": "package:default",
    "paper-vit-l16": "paper:paper-vit-l16",
    "paper-vit-b16": "paper:paper-vit-b16",
    "paper-vit-b32": "paper:paper-vit-b32",
    "paper-vit-l32": "paper:paper-vit-l32",
}


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


def validate_architecture(arch: ArchitectureConfig) -> None:
    """Check an architecture's name and every argument's type and range.

    Raises:
        UnknownArchitectureError: The name is not registered.
        InvalidConfigError: An argument is unknown, of the wrong type, or out of range.
    """
    spec = get_architecture(arch.name)
    for key, value in arch.args.items():
        if key not in spec.args:
            raise InvalidConfigError(
                f"architecture.args.{key} is not an option of {arch.name!r}. "
                f"Valid options: {', '.join(sorted(spec.args))}."
            )
        rule = spec.args[key]
        if rule.choices:
            if value not in rule.choices:
                raise InvalidConfigError(
                    f"architecture.args.{key} must be one of {list(rule.choices)}, got {value!r}."
                )
            continue
        ok_type = isinstance(value, rule.kind) and not isinstance(value, bool)
        if rule.kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok_type = True
        if not ok_type or not rule.low <= value <= rule.high:
            raise InvalidConfigError(
                f"architecture.args.{key} must be a {rule.kind.__name__} in [{rule.low}, {rule.high}], got {value!r}."
            )
    if spec.family == "vit":
        _check_vit_size(arch.name, {**spec.fixed, **arch.args})


MAX_PARAMETERS = 1_500_000_000


def _check_vit_size(name: str, settings: dict[str, Any]) -> None:
    """Refuse ViT settings whose arguments are each in range but together ask for a giant network."""
    hidden, layers = settings["hidden_size"], settings["num_hidden_layers"]
    inner, patch = settings["intermediate_size"], settings["patch_size"]
    count = layers * (4 * hidden * hidden + 2 * hidden * inner) + 3 * patch * patch * hidden
    if count > MAX_PARAMETERS:
        raise InvalidConfigError(
            f"architecture {name!r} with these arguments would have about {count / 1e9:.1f} B parameters; "
            f"imgsent builds at most {MAX_PARAMETERS / 1e9:.1f} B (ViT-L/16 has 0.3 B). Check architecture.args."
        )
