"""``imgsent report``: one HTML page of a run's results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgsent.cli.common import err

EPILOG = (
    "**Examples**\n\n"
    "    imgsent report out.csv -o report.html\n\n"
    "    imgsent classify photos/ -o out.csv --report report.html"
)


def report(
    results: Annotated[Path, typer.Argument(help="CSV or JSONL written by imgsent classify.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path("report.html"),
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model name to show in the summary.")] = None,
    images_root: Annotated[
        Optional[Path], typer.Option("--images-root", help="Folder that relative paths are resolved against. Default: here.")
    ] = None,
    max_per_label: Annotated[int, typer.Option("--max-per-label", min=1, help="Thumbnails per label; more are sampled.")] = 400,
    thumbnail_size: Annotated[int, typer.Option("--thumbnail-size", min=16, max=1024, help="Thumbnail side in pixels.")] = 128,
) -> None:
    """Turn classify results into one self-contained HTML page: summary, confidence histograms,
    thumbnails per label sorted by confidence, and the error rows. It opens offline."""
    from imgsent.outputs import check_writable
    from imgsent.report import write_report

    output = check_writable(output, kind="report")
    summary = write_report(results, output, model=model, images_root=images_root,
                           max_per_label=max_per_label, thumbnail_size=thumbnail_size)
    err.print(
        f"{summary.rows} rows, {summary.shown} thumbnails, {summary.errors} errors; "
        f"{summary.bytes / 1e6:.1f} MB in {summary.seconds:.1f} s -> {summary.output}",
        markup=False,
    )
