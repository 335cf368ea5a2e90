"""``imgsent cache info`` and ``imgsent cache clear``: the engine cache, listed and cleared."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from imgsent.cli.common import err

EPILOG = (
    "**Examples**\n\n"
    "    imgsent cache info\n\n"
    "    imgsent cache clear --older-than 30\n\n"
    "    imgsent cache clear --yes\n\n"
    "The cache lives in $IMGSENT_CACHE/engines (default ~/.cache/imgsent/engines) and keeps the 8 most "
    "recently used entries within 5 GB; a cleared entry is exported again the next time it is needed."
)


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def info() -> None:
    """List the cache entries (key, model, engine format, size, last used) and their total size."""
    from imgsent.engines.cache import cache_entries, cache_root

    entries = cache_entries()
    table = Table(title=f"imgsent engine cache: {cache_root()}")
    for column in ("key", "model", "format", "size", "last used"):
        table.add_column(column, justify="right" if column == "size" else "left", overflow="fold")
    for entry in entries:
        table.add_row(entry.key[:12], entry.model, entry.engine_format, _size(entry.size),
                      entry.last_used.astimezone().strftime("%Y-%m-%d %H:%M"))
    Console(soft_wrap=True).print(table)
    typer.echo(f"{len(entries)} entries, {_size(sum(e.size for e in entries))} in total")


def clear(
    older_than: Annotated[
        Optional[float], typer.Option("--older-than", min=0.0, metavar="DAYS", help="Only entries not used for DAYS days.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
) -> None:
    """Delete cache entries: all of them, or those not used for --older-than DAYS. Asks first unless --yes."""
    from imgsent.engines.cache import clear_cache

    chosen = clear_cache(older_than_days=older_than, dry_run=True)
    if not chosen:
        err.print("Nothing to delete.")
        return
    total = _size(sum(e.size for e in chosen))
    for entry in chosen:
        err.print(f"  {entry.key[:12]}  {entry.model}  {_size(entry.size)}", highlight=False)
    if not yes and not typer.confirm(f"Delete {len(chosen)} entries ({total})?", default=False, err=True):
        err.print("Nothing deleted.")
        raise typer.Exit(1)
    removed = clear_cache(older_than_days=older_than)
    err.print(f"Deleted {len(removed)} entries ({_size(sum(e.size for e in removed))}).")
