"""``imgsent models`` and ``imgsent download``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from imgsent.cli.common import RevisionOpt

DOWNLOAD_EPILOG = (
    "**Offline machines**: run `imgsent download OWNER/NAME` where the Hub is reachable, copy the Hugging Face "
    "cache folder (HF_HUB_CACHE, default ~/.cache/huggingface/hub) to the offline machine, and set "
    "HF_HUB_OFFLINE=1 there. Paper models (`imgsent download paper-vit-b32`) are converted into imgsent's own cache: "
    "copy ~/.cache/imgsent/paper/NAME ($IMGSENT_CACHE/paper/NAME) instead."
)


def models(
    cache_dir: Annotated[Optional[Path], typer.Option(help="Hub cache folder. Default: the huggingface_hub cache.")] = None,
) -> None:
    """List the known models and the imgsent models already in the local cache."""
    from imgsent.hub import cached_models
    from imgsent.convert.paper import paper_cached
    from imgsent.registry import KNOWN_MODELS, BundledModel, PaperRelease

    table = Table(title="imgsent models")
    table.add_column("name")
    table.add_column("source")
    table.add_column("cached")
    table.add_column("predicts")
    for name, source in KNOWN_MODELS.items():
        if isinstance(source, PaperRelease):
            cached = "yes" if paper_cached(name, cache_dir) else ""
            table.add_row(name, source.summary(), cached, "negative / neutral / positive")
            continue
        bundled = isinstance(source, BundledModel)
        table.add_row(name, str(source), "bundled" if bundled else "", _predicts(name) if bundled else "")
    for entry in cached_models(cache_dir=cache_dir):
        table.add_row(str(entry), "hub cache", "yes", "")
    Console(soft_wrap=True).print(table)


def _predicts(name: str) -> str:
    """What a bundled model can output in practice, from its config alone (no torch, no weights)."""
    from imgsent.config import ModelConfig, trained_labels
    from imgsent.hub.names import package_default
    from imgsent.registry import KNOWN_MODELS

    labels = trained_labels(ModelConfig.load(package_default(KNOWN_MODELS[name].folder)))  # type: ignore[union-attr]
    return " / ".join(labels) + ("" if "neutral" in labels else " (binary in practice: never neutral)")


def download(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Hub repo id or known name to fetch into the cache.")],
    revision: RevisionOpt = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Hub cache folder.")] = None,
    token: Annotated[Optional[str], typer.Option(envvar="HF_TOKEN", help="Hub token (or HF_TOKEN).", show_default=False)] = None,
) -> None:
    """Fetch a model into the cache, for later use with HF_HUB_OFFLINE=1 on machines without network."""
    from imgsent.convert.paper import CONVERTER
    from imgsent.environment import is_offline
    from imgsent.errors import HubError
    from imgsent.hub import download_model
    from imgsent.outputs import check_writable

    if is_offline():
        raise HubError(
            f"Cannot download {model!r}: HF_HUB_OFFLINE is set, which turns downloads off. Run this command "
            "without it on a machine that reaches the Hub (HF_HUB_OFFLINE= imgsent download ...), then copy "
            "the cache folder to the offline machine."
        )
    if cache_dir is not None:
        check_writable(cache_dir, kind="cache folder", folder=True)
    folder = download_model(model, revision=revision, cache_dir=cache_dir, token=token, convert=CONVERTER)
    typer.echo(str(folder))
