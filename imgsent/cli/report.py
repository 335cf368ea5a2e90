"""``imgsent report`` and ``imgsent explain``: look at a run's results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgsent.cli.common import EXIT_OK, EXIT_PARTIAL, ModelOpt, RevisionOpt, err
from imgsent.cli.options import check_run_options

REPORT_EPILOG = (
    "**Examples**\n\n"
    "    imgsent report out.csv -o report.html\n\n"
    "    imgsent classify photos/ -o out.csv --report report.html"
)
EXPLAIN_EPILOG = (
    "**Examples**\n\n"
    "    imgsent explain photo.jpg -o explanations/\n\n"
    "    imgsent explain photos/*.jpg -o explanations/ --model ./my-vit"
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
    from imgsent.report import write_report

    summary = write_report(results, output, model=model, images_root=images_root,
                           max_per_label=max_per_label, thumbnail_size=thumbnail_size)
    err.print(
        f"{summary.rows} rows, {summary.shown} thumbnails, {summary.errors} errors; "
        f"{summary.bytes / 1e6:.1f} MB in {summary.seconds:.1f} s -> {summary.output}",
        highlight=False,
    )


def explain(
    images: Annotated[list[Path], typer.Argument(help="Image files.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the overlay PNGs.")] = Path("explanations"),
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
) -> None:
    """Write, for each image, a PNG overlay of where the model looked for its predicted class
    (Grad-CAM). The overlay keeps the image's aspect ratio."""
    from imgsent.explain import explain_files
    from imgsent.predictor import Predictor

    check_run_options(device=device, dtype="float32")
    predictor = Predictor.from_pretrained(model, revision=revision, device=device, dtype="float32")
    written = explain_files(predictor, [str(p) for p in images], output)
    failed = 0
    for item in written:
        if item.error is None:
            err.print(f"{item.source}: {item.label} {item.confidence:.2f} -> {item.path}", highlight=False)
        else:
            failed += 1
            err.print(f"[red]{item.source}: {item.error}[/]", highlight=False)
    raise typer.Exit(EXIT_PARTIAL if failed else EXIT_OK)
