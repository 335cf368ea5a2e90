"""The ``huggingface_hub`` client settings every transfer shares: files and user agent (offline mode is
:func:`imgsent.environment.is_offline`)."""

from __future__ import annotations

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
