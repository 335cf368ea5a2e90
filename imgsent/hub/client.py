"""The ``huggingface_hub`` client settings every transfer shares: files, user agent, offline mode."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from imgsent.config import CONFIG_NAME, WEIGHTS_NAME

if TYPE_CHECKING:
    from huggingface_hub import HfApi

ALLOW_PATTERNS: tuple[str, ...] = (CONFIG_NAME, WEIGHTS_NAME, "README.md")
"""The only files downloaded from, or uploaded to, a model repo."""


def api_client(*, token: str | bool | None, endpoint: str | None) -> HfApi:
    """Build an HfApi client tagged with imgsent's name and version."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token, library_name="imgsent", library_version=imgsent_version())


def imgsent_version() -> str:
    """Return the installed imgsent version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imgsent")
    except PackageNotFoundError:
        return "0+unknown"


def is_offline(local_files_only: bool | None) -> bool:
    """Whether this call must not use the network."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(local_files_only) or bool(constants.HF_HUB_OFFLINE) or env
