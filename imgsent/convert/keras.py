"""Convert the authors' Keras ``.h5`` ViT students into imgsent model folders.

The file is read with h5py only: nothing is unpickled and TensorFlow is not needed. Weights
are found by the end of their names (prefixes differ between TensorFlow versions and between
``model.save()``, which nests them under ``model_weights/``, and ``save_weights()``), and
every shape is checked against the preset before anything is written.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
from imgsent.convert.card import model_card
from imgsent.errors import ConversionError, MissingExtraError
from imgsent.hashing import file_sha256
from imgsent.models.network import build_network, save_model_folder
from imgsent.registry import PAPER_RELEASES, PaperRelease, Scale, ViT, get_architecture

_SCALES: dict[str, tuple[float, float]] = {"unit": (0.0, 1.0), "symmetric": (0.5, 0.5)}


@dataclass(frozen=True)
class KerasPreset:
    """What a Keras student is and how to feed it; what its weight shapes cannot tell.

    The presets of the authors' students are built from their records
    (:data:`imgsent.registry.PAPER_RELEASES`) and the ViT architecture records; write one by
    hand only for another ViT size.

    Args:
        name: Preset name, e.g. ``"vit-b32"``.
        architecture: imgsent architecture name, e.g. ``"vit_b32"``.
        patch_size: Side of a patch, in pixels.
        hidden_size: Token width.
        num_layers: Transformer blocks.
        num_heads: Attention heads (not visible in the weights).
        mlp_dim: Width of each block's MLP.
        image_size: Input side, in pixels.
        head_hidden: Width of the head's hidden Dense layer.
        scale: ``"unit"`` feeds ``x / 255``; ``"symmetric"`` feeds ``x / 127.5 - 1``.
        head_activation: The head's GELU: ``"gelu_tanh"`` (the authors') or ``"gelu"``.
        layer_norm_eps: Epsilon of every LayerNorm.

    Example:
        >>> PRESETS["vit-b32"].image_size, PRESETS["vit-b32"].scale, PRESETS["vit-b32"].num_heads
        (224, 'unit', 12)
    """

    name: str
    architecture: str
    patch_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    mlp_dim: int
    image_size: int
    head_hidden: int = 32
    scale: Scale = "symmetric"
    head_activation: str = "gelu_tanh"
    layer_norm_eps: float = 1e-6

    @classmethod
    def from_release(cls, release: PaperRelease) -> KerasPreset:
        """The preset of one released student: its ViT size from the architecture record, the rest from the release."""
        vit = get_architecture(release.architecture).backbone
        if not isinstance(vit, ViT):  # pragma: no cover - the release table names ViTs only
            raise ConversionError(f"Release {release.filename!r} names {release.architecture!r}, which is not a ViT.")
        return cls(release.preset, release.architecture, vit.patch_size, vit.hidden_size, vit.num_hidden_layers,
                   vit.num_attention_heads, vit.intermediate_size, release.image_size, release.head_hidden, release.scale,
                   release.head_activation, release.layer_norm_eps)


PRESETS: dict[str, KerasPreset] = {r.preset: KerasPreset.from_release(r) for r in PAPER_RELEASES.values()}
"""The presets of the authors' students, by name (``vit-b32``, ``vit-b16``, ``vit-l32``, ``vit-l16``)."""

_BLOCK = r"encoderblock_(\d+)/(?:.+/)?"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "attn": re.compile(_BLOCK + r"MultiHeadDotProductAttention_1/(query|key|value|out)/(kernel|bias)$"),
    "ln": re.compile(_BLOCK + r"LayerNorm_([02])/(gamma|beta)$"),
    "mlp": re.compile(_BLOCK + r"Dense_([01])/(kernel|bias)$"),
    "embedding": re.compile(r"(?:^|/)embedding/(kernel|bias)$"),
    "cls": re.compile(r"(?:^|/)class_token/cls$"),
    "pos": re.compile(r"(?:^|/)posembed_input/pos_embedding$"),
    "norm": re.compile(r"(?:^|/)encoder_norm/(gamma|beta)$"),
}
# Target module names: transformers 5 first, then transformers 4.
_ATTN = {"query": ("attention.q_proj", "attention.attention.query"), "key": ("attention.k_proj", "attention.attention.key"),
         "value": ("attention.v_proj", "attention.attention.value"), "out": ("attention.o_proj", "attention.output.dense")}
_MLP = {"0": ("mlp.fc1", "intermediate.dense"), "1": ("mlp.fc2", "output.dense")}
_LN = {"0": ("layernorm_before",), "2": ("layernorm_after",)}
_BLOCKS = ("backbone.vit.layers.{i}.", "backbone.vit.encoder.layer.{i}.")


def read_h5(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every weight array of a Keras ``.h5`` file (either save format) with h5py.

    Returns:
        Weight name (path inside the file without ``model_weights/`` and ``:0``) -> float32 array.

    Raises:
        ConversionError: The file is truncated, not HDF5, or holds no weights.
        MissingExtraError: h5py is not installed.
    """
    try:
        import h5py
    except ImportError:
        raise MissingExtraError("Reading Keras .h5 files needs h5py. Install it with: pip install 'imgsent[convert]'") from None
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"No Keras .h5 file at {os.fspath(path)!r}.")
    try:
        with h5py.File(path, "r") as h5:
            root = h5.get("model_weights", h5)
            found: dict[str, np.ndarray] = {}

            def visit(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f":
                    found[name.removesuffix(":0")] = np.asarray(obj[()], dtype=np.float32)

            root.visititems(visit)
    except (OSError, KeyError, RuntimeError) as exc:
        raise ConversionError(
            f"{os.fspath(path)!r} is not a readable HDF5 file (truncated or not a Keras .h5): {exc}"
        ) from None
    if not found:
        raise ConversionError(f"{os.fspath(path)!r} is an HDF5 file but holds no Keras weights.")
    return found


def map_weights(weights: dict[str, np.ndarray], source: str = "file") -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Map vit-keras weight names to imgsent's canonical names and read the architecture off the shapes.

    Returns:
        ``(tensors, shape)``: tensors keyed ``"block{i}.{role}.{param}"`` or ``"{role}.{param}"``
        in Keras layout, and the sizes found (``patch_size``, ``hidden_size``, ``num_layers``,
        ``mlp_dim``, ``image_size``, ``head_hidden``).

    Raises:
        ConversionError: A layer is missing or duplicated, or the weights are not a vit-keras student.
    """
    tensors: dict[str, np.ndarray] = {}
    names: dict[str, str] = {}
    rest: dict[str, np.ndarray] = {}
    for name, array in weights.items():
        key = _canonical(name)
        if key is None:
            rest[name] = array
            continue
        if key in tensors:
            raise ConversionError(f"{source} holds two weights for the same slot: {names[key]!r} and {name!r}.")
        tensors[key], names[key] = array, name
    if "embedding.kernel" not in tensors:
        raise ConversionError(
            f"{source} is not a vit-keras ViT: no 'embedding/kernel' weight. It holds {sorted(weights)[:8]}."
        )
    kernel = tensors["embedding.kernel"]
    if kernel.ndim != 4 or kernel.shape[0] != kernel.shape[1] or kernel.shape[2] != 3:
        raise ConversionError(f"{source}: 'embedding/kernel' has shape {kernel.shape}, expected (P, P, 3, D).")
    patch, hidden = int(kernel.shape[0]), int(kernel.shape[3])
    blocks = sorted({int(k.split(".")[0][5:]) for k in tensors if k.startswith("block")})
    if not blocks or blocks != list(range(len(blocks))):
        raise ConversionError(f"{source}: encoder blocks {blocks} are not numbered 0..L-1; a layer is missing.")
    required = ["embedding.bias", "cls", "pos", "norm.gamma", "norm.beta"]
    for i in blocks:
        required += [f"block{i}.{r}.{p}" for r in ("query", "key", "value", "out", "mlp0", "mlp1") for p in ("kernel", "bias")]
        required += [f"block{i}.{r}.{p}" for r in ("ln0", "ln2") for p in ("gamma", "beta")]
    missing = [k for k in required if k not in tensors]
    if missing:
        raise ConversionError(f"{source} is missing layer weights: {missing[:6]}{' ...' if len(missing) > 6 else ''}.")
    tokens = tensors["pos"].shape[1] - 1 if tensors["pos"].ndim == 3 else -1
    side = math.isqrt(max(tokens, 0))
    if tokens < 1 or side * side != tokens:
        raise ConversionError(f"{source}: pos_embedding has shape {tensors['pos'].shape}; expected (1, N*N + 1, D).")
    tensors.update(_head(rest, hidden, source))
    shape = {
        "patch_size": patch, "hidden_size": hidden, "num_layers": len(blocks),
        "mlp_dim": int(tensors["block0.mlp0.kernel"].shape[-1]), "image_size": side * patch,
        "head_hidden": int(tensors["head0.kernel"].shape[-1]),
    }
    return tensors, shape


def _canonical(name: str) -> str | None:
    """Canonical slot of one vit-keras weight name, or None for a weight outside the ViT."""
    for kind, pattern in _PATTERNS.items():
        m = pattern.search(name)
        if m is None:
            continue
        if kind == "attn":
            return f"block{m[1]}.{m[2]}.{m[3]}"
        if kind == "ln":
            return f"block{m[1]}.ln{m[2]}.{m[3]}"
        if kind == "mlp":
            return f"block{m[1]}.mlp{m[2]}.{m[3]}"
        return kind if kind in ("cls", "pos") else f"{kind}.{m[1]}"
    return None


def _head(rest: dict[str, np.ndarray], hidden: int, source: str) -> dict[str, np.ndarray]:
    """Find the two head Dense layers, Dense(D, H) then Dense(H, 3), among the non-ViT weights."""
    kernels = {n.rsplit("/", 1)[0]: a for n, a in rest.items() if n.endswith("/kernel") and a.ndim == 2}
    if len(kernels) != 2:
        raise ConversionError(
            f"{source}: expected exactly two head Dense layers after the ViT (Dense(32) then Dense(3)), "
            f"found {len(kernels)}: {sorted(kernels)}."
        )
    first = [n for n, a in kernels.items() if a.shape[0] == hidden]
    last = [n for n, a in kernels.items() if a.shape[1] == 3 and n not in first[:1]]
    if len(first) != 1 or len(last) != 1 or kernels[first[0]].shape[1] != kernels[last[0]].shape[0]:
        shapes = {n: a.shape for n, a in kernels.items()}
        raise ConversionError(f"{source}: head Dense layers {shapes} do not chain ({hidden}) -> H -> (3).")
    out: dict[str, np.ndarray] = {}
    for slot, layer in (("head0", first[0]), ("head1", last[0])):
        bias = rest.get(f"{layer}/bias")
        if bias is None or bias.shape != (kernels[layer].shape[1],):
            raise ConversionError(f"{source}: head layer {layer!r} has no bias of shape ({kernels[layer].shape[1]},).")
        out[f"{slot}.kernel"], out[f"{slot}.bias"] = kernels[layer], bias
    return out


def infer_preset(path: str | os.PathLike[str], shape: dict[str, int]) -> KerasPreset:
    """Pick the preset from the release's file name, else from the weight shapes when only one fits.

    Raises:
        ConversionError: The name and the shapes disagree, or no preset fits; the message lists them.
    """
    by_shape = [p for p in PRESETS.values() if _mismatches(p, shape) == []]
    stem = Path(path).name.removesuffix(".h5")
    if stem in PAPER_RELEASES:
        return PRESETS[PAPER_RELEASES[stem].preset]
    if len(by_shape) == 1:
        return by_shape[0]
    found = ", ".join(f"{k}={v}" for k, v in shape.items())
    if not by_shape:
        raise ConversionError(
            f"{Path(path).name!r} has weights ({found}) that match none of the presets ({', '.join(sorted(PRESETS))}). "
            "For another ViT size, pass a KerasPreset with its head count and normalisation to "
            "imgsent.convert.convert_keras(..., preset=KerasPreset(...))."
        )
    raise ConversionError(  # pragma: no cover - the presets differ in (patch, hidden)
        f"Cannot tell which preset {Path(path).name!r} needs: its weights ({found}) match "
        f"{', '.join(p.name for p in by_shape)}. Pass one with --preset."
    )


def _mismatches(preset: KerasPreset, shape: dict[str, int]) -> list[str]:
    return [f"{k}={v} (preset: {getattr(preset, k)})" for k, v in shape.items() if getattr(preset, k) != v]


def convert_keras(
    path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    preset: str | KerasPreset | None = None,
) -> Path:
    """Convert one of the authors' Keras ``.h5`` students into an imgsent model folder.

    The folder (``config.json``, ``model.safetensors``, ``README.md``) is written to a
    temporary sibling and renamed into place, so ``output`` never holds a half-written model.

    Args:
        path: The ``.h5`` file, saved with ``model.save()`` or ``save_weights()``.
        output: Folder to create; it must not exist or be empty.
        preset: A name from :data:`PRESETS`, a custom :class:`KerasPreset`, or ``None`` (default)
            to infer it from the release's file name or the weight shapes.

    Returns:
        The model folder.

    Raises:
        ConversionError: The file is truncated or foreign, a layer is missing, a shape does not
            match the preset, no preset can be inferred, or ``output`` is not empty.

    Example:
        >>> convert_keras("ViT_B32.h5", "paper-vit-b32")  # doctest: +SKIP
        PosixPath('paper-vit-b32')
    """
    out = Path(output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConversionError(f"Output {os.fspath(out)!r} already exists and is not an empty folder; pick a new one.")
    tensors, shape = map_weights(read_h5(path), source=repr(os.fspath(path)))
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ConversionError(f"Unknown preset {preset!r}. Valid presets: {', '.join(sorted(PRESETS))}.")
        preset = PRESETS[preset]
    chosen = preset if preset is not None else infer_preset(path, shape)
    wrong = _mismatches(chosen, shape)
    if wrong:
        raise ConversionError(f"{os.fspath(path)!r} does not fit preset {chosen.name!r}: {'; '.join(wrong)}.")
    if chosen.hidden_size % chosen.num_heads:
        raise ConversionError(f"Preset {chosen.name!r}: hidden_size {chosen.hidden_size} is not divisible by num_heads.")
    config = _config(chosen, path)
    net = build_network(config.architecture, config.preprocess.image_size)
    _load(net, tensors, chosen)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_model_folder(net.eval(), config, tmp)
        (tmp / "README.md").write_text(model_card(config), encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a model folder is as readable as save_pretrained's files
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _config(preset: KerasPreset, path: str | os.PathLike[str]) -> ModelConfig:
    backbone = get_architecture(preset.architecture).backbone
    args: dict[str, Any] = {"head_hidden": preset.head_hidden, "head_activation": preset.head_activation,
                           "layer_norm_eps": preset.layer_norm_eps}
    for key, ours in (("patch_size", "patch_size"), ("hidden_size", "hidden_size"), ("num_hidden_layers", "num_layers"),
                      ("num_attention_heads", "num_heads"), ("intermediate_size", "mlp_dim")):
        if getattr(backbone, key) != getattr(preset, ours):
            args[key] = getattr(preset, ours)
    mean, std = _SCALES[preset.scale]
    preprocess = PreprocessConfig(image_size=preset.image_size, resize_mode="squash", interpolation="bilinear",
                                  mean=(mean,) * 3, std=(std,) * 3, resize_antialias=False, jpeg_draft=False)
    provenance = {"source": "keras-h5", "file": Path(path).name, "sha256": file_sha256(path), "preset": preset.name}
    return ModelConfig(ArchitectureConfig(preset.architecture, args), preprocess, provenance=provenance)


def _load(net: Any, tensors: dict[str, np.ndarray], preset: KerasPreset) -> None:
    """Copy the Keras tensors into the network, transposed to PyTorch layout, checking every shape."""
    import torch

    target = net.state_dict()
    prefix = next((p for p in _BLOCKS if p.format(i=0) + "layernorm_before.weight" in target), None)
    if prefix is None:  # pragma: no cover - depends on the transformers version
        raise ConversionError("This version of transformers names ViT weights in a way imgsent does not know.")
    emb = "backbone.vit.embeddings."
    state: dict[str, np.ndarray] = {
        emb + "cls_token": tensors["cls"], emb + "position_embeddings": tensors["pos"],
        emb + "patch_embeddings.projection.weight": tensors["embedding.kernel"].transpose(3, 2, 0, 1),
        emb + "patch_embeddings.projection.bias": tensors["embedding.bias"],
        "backbone.vit.layernorm.weight": tensors["norm.gamma"], "backbone.vit.layernorm.bias": tensors["norm.beta"],
    }
    heads = [k for k in target if k.startswith("head.") and k.endswith(".weight")]
    for slot, key in zip(("head0", "head1"), heads):
        state[key], state[key[:-6] + "bias"] = tensors[f"{slot}.kernel"].T, tensors[f"{slot}.bias"]
    for i in range(preset.num_layers):
        block = prefix.format(i=i)
        pairs = [(role, _ATTN[role]) for role in _ATTN] + [(f"mlp{n}", _MLP[n]) for n in _MLP]
        for role, names in pairs:
            name = next(n for n in names if block + n + ".weight" in target)
            state[block + name + ".weight"] = tensors[f"block{i}.{role}.kernel"].T
            state[block + name + ".bias"] = tensors[f"block{i}.{role}.bias"]
        for n, (name,) in _LN.items():
            state[block + name + ".weight"] = tensors[f"block{i}.ln{n}.gamma"]
            state[block + name + ".bias"] = tensors[f"block{i}.ln{n}.beta"]
    missing = sorted(set(target) - set(state))
    if missing:  # pragma: no cover - guards a transformers layout change
        raise ConversionError(f"Converter left network weights unset: {missing[:5]}.")
    for key, array in state.items():
        if tuple(array.shape) != tuple(target[key].shape):
            raise ConversionError(
                f"Weight for {key!r} has shape {tuple(array.shape)} but preset {preset.name!r} needs "
                f"{tuple(target[key].shape)}."
            )
    net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
