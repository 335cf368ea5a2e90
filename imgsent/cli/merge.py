"""``imgsent merge``: join the part files of a sharded classify run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgsent.cli.common import err

EPILOG = (
    "**Examples**\n\n"
    "    imgsent merge all.csv out.part-*.csv --inputs photos/ --recursive\n\n"
    "    imgsent merge all.jsonl part-0.csv part-1.csv part-2.csv\n\n"
    "**Exit codes**: 0 merged; 1 parts overlap, miss input files or cannot be read (nothing written)."
)


def merge(
    output: Annotated[Path, typer.Argument(help="Merged file (.csv or .jsonl).", show_default=False)],
    parts: Annotated[list[Path], typer.Argument(help="Part files (CSV or JSONL).", show_default=False)],
    inputs: Annotated[
        Optional[list[Path]],
        typer.Option("--inputs", "-i", help="The files and folders classified; checks every file has exactly one row."),
    ] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Scan --inputs folders recursively.")] = False,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="csv or jsonl. Default: from the extension.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an OUTPUT that already holds rows.")] = False,
) -> None:
    """Join part files into one, refusing duplicate paths and (with --inputs) missing or unknown files.

    With --inputs, rows come out in the order classify lists the inputs, so the merged file
    equals the output of one unsharded run.
    """
    from imgsent.merge import merge_parts

    if fmt is not None and fmt not in ("csv", "jsonl"):
        raise typer.BadParameter(f"--format must be csv or jsonl, got {fmt!r}.")
    summary = merge_parts(output, parts, inputs=inputs, recursive=recursive, fmt=fmt, overwrite=overwrite)  # type: ignore[arg-type]
    for part in summary.torn:
        err.print(f"warning: {part} ended in a torn row (a killed write), left out", highlight=False)
    checked = " (checked against --inputs)" if inputs else ""
    err.print(
        f"{summary.rows} rows ({summary.errors} errors) from {len(summary.parts)} parts{checked} -> {output}",
        highlight=False,
    )
