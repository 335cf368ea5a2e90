"""A model: a network plus the config that says how to build, feed and read it; loads and saves model folders.

Weights are stored as safetensors only; nothing is ever unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from imgsent.config import CONFIG_NAME, WEIGHTS_NAME, ModelConfig
from imgsent.errors import InvalidConfigError, ModelNotFoundError
from imgsent.models.network import SentimentNet, build_network, save_model_folder


class SentimentModel(nn.Module):
    """An image-polarity model: a :class:`~imgsent.models.SentimentNet` and its :class:`~imgsent.config.ModelConfig`.

    ``forward`` takes *normalised* pixels [B, 3, S, S] and returns logits [B, 3]
    in the order negative, neutral, positive. Most users want :class:`imgsent.Predictor`.

    Example:
        >>> from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
        >>> model = SentimentModel(ModelConfig(ArchitectureConfig("efficientnet_lite0"), PreprocessConfig()))
        >>> model.save_pretrained("my-model")
        PosixPath('my-model')
        >>> SentimentModel.from_pretrained("my-model").config == model.config
        True
    """

    def __init__(self, config: ModelConfig, net: SentimentNet | None = None) -> None:
        super().__init__()
        self.config = config
        self.net = net if net is not None else build_network(config.architecture, config.preprocess.image_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixels)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str] | None = None,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        token: str | bool | None = None,
        local_files_only: bool | None = None,
    ) -> SentimentModel:
        """Load a model from the package default, a known name, a local folder or a Hub repo.

        Args:
            name_or_path: ``None`` for the default model shipped in the package, a name from
                ``imgsent models``, a folder holding ``config.json`` and ``model.safetensors``,
                or a Hub repo id such as ``"org/imgsent-vit-b16"``.
            revision: Hub branch, tag or commit sha to pin. Defaults to ``"main"``.
            cache_dir: Hub cache folder. Defaults to the huggingface_hub cache.
            token: Hub token for private repos.
            local_files_only: Only use the local cache (also set by ``HF_HUB_OFFLINE=1``).

        Returns:
            The model in eval mode, on CPU, in float32.

        Raises:
            ModelNotFoundError: The name, folder, repo, revision or file does not exist.
            UnsafeWeightsError: Only pickle-based weights were found.
            InvalidConfigError: ``config.json`` fails validation.
            HubError: The Hub could not be reached or failed.

        Example:
            >>> model = SentimentModel.from_pretrained("org/imgsent-vit-b16", revision="v1.0")  # doctest: +SKIP
            >>> model.config.labels  # doctest: +SKIP
            ('negative', 'neutral', 'positive')
        """
        from imgsent.convert.paper import CONVERTER
        from imgsent.hub import resolve_model_dir

        folder = resolve_model_dir(
            name_or_path, revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only,
            convert=CONVERTER,
        )
        return cls.from_folder(folder)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str]) -> SentimentModel:
        """Load a model from a local folder with ``config.json`` and ``model.safetensors``."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (folder / name).is_file():
                raise ModelNotFoundError(f"{folder} has no {name}; a model folder needs {CONFIG_NAME} and {WEIGHTS_NAME}.")
        model = cls(ModelConfig.load(folder))
        try:
            state = load_file(folder / WEIGHTS_NAME, device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise InvalidConfigError(f"{folder / WEIGHTS_NAME} is not a readable safetensors file: {exc}") from None
        expected = model.net.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise InvalidConfigError(
                f"{folder / WEIGHTS_NAME} does not match architecture {model.config.architecture.name!r}: "
                f"{len(missing)} missing tensors (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})."
            )
        for key, tensor in state.items():
            if tensor.shape != expected[key].shape:
                raise InvalidConfigError(
                    f"{WEIGHTS_NAME}: tensor {key!r} has shape {tuple(tensor.shape)}, "
                    f"expected {tuple(expected[key].shape)}."
                )
        model.net.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
        return model.eval()

    def save_pretrained(self, folder: str | os.PathLike[str], *, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``folder``.

        Args:
            folder: Destination; created if needed.
            dtype: Store floating-point weights in this dtype (e.g. ``torch.float16`` to halve the size).
                Loading always converts back to float32.

        Returns:
            The folder path.

        Example:
            >>> model = SentimentModel.from_pretrained()  # the bundled model
            >>> model.save_pretrained("exported", dtype=torch.float16)
            PosixPath('exported')
            >>> sorted(p.name for p in Path("exported").iterdir())
            ['config.json', 'model.safetensors']
        """
        return save_model_folder(self.net, self.config, folder, dtype=dtype)
