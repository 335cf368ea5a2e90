"""``imgsent models`` and ``imgsent download``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from imgsent.cli.app import RevisionOpt, fail
from imgsent.errors import ImgsentError


def models(
    cache_dir: Annotated[Optional[Path], typer.Option(help="Hub cache folder. Default: the huggingface_hub cache.")] = None,
) -> None:
    """List the known models and the imgsent models already in the local cache."""
    from imgsent.hub import cached_models
    from imgsent.registry import KNOWN_MODELS

    table = Table(title="imgsent models")
    table.add_column("name")
    table.add_column("source")
    table.add_column("cached")
    from imgsent.convert.paper import PAPER_MODELS, paper_cached

    for name, source in KNOWN_MODELS.items():
        if source.startswith("paper:"):
            table.add_row(name, PAPER_MODELS[source[6:]].summary(), "yes" if paper_cached(name, cache_dir) else "")
            continue
        table.add_row(name, source, "bundled" if source.startswith("package:") else "")
    try:
        cached = cached_models(cache_dir=cache_dir)
    except ImgsentError as exc:
        fail(exc)
    for entry in cached:
        table.add_row(str(entry), "hub cache", "yes")
    Console().print(table)


def download(
    model: Annotated[str, typer.Argument(help="Hub repo id or known name to fetch into the cache.")],
    revision: RevisionOpt = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Hub cache folder.")] = None,
    token: Annotated[Optional[str], typer.Option(envvar="HF_TOKEN", help="Hub token (or HF_TOKEN).", show_default=False)] = None,
) -> None:
    """Fetch a model into the cache, for later use with HF_HUB_OFFLINE=1 on machines without network."""
    from imgsent.hub import download_model

    try:
        folder = download_model(model, revision=revision, cache_dir=cache_dir, token=token)
    except ImgsentError as exc:
        fail(exc)
    typer.echo(str(folder))
