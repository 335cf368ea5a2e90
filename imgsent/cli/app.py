"""``imgsent``: the Typer application and its top-level commands.

Each command validates its arguments, calls one library function and renders the result.
Progress and summaries go to stderr; stdout carries only machine-readable output.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from imgsent.errors import ImgsentError

app = typer.Typer(
    name="imgsent",
    help="Image sentiment polarity (negative / neutral / positive) from pixels alone.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_PARTIAL = 3

ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Model: a known name, a local folder or a Hub repo id. Default: the bundled model."),
]
RevisionOpt = Annotated[Optional[str], typer.Option(help="Hub branch, tag or commit sha to pin.")]


def fail(exc: Exception) -> None:
    """Print an imgsent error without a traceback and exit with code 1."""
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(EXIT_FAILURE)


def _register() -> None:
    from imgsent.cli import classify, convert, hub

    app.command(epilog=classify.EPILOG)(classify.classify)
    app.command()(hub.models)
    app.command()(hub.download)
    app.command(epilog=evaluate_epilog())(evaluate)
    app.add_typer(distill_app(), name="distill")
    app.add_typer(convert.convert_app(), name="convert")


def evaluate_epilog() -> str:
    return (
        "**Examples**\n\n"
        "    imgsent evaluate default labels.csv\n\n"
        "    imgsent evaluate ./my-model labels.csv --json metrics.json"
    )


def evaluate(
    model: Annotated[str, typer.Argument(help="Model: 'default', a known name, a folder or a Hub repo id.")],
    labels: Annotated[Path, typer.Argument(help="CSV with image,label[,agree] or path,class (0 negative, 1 positive).")],
    images_root: Annotated[
        Optional[Path], typer.Option("--images-root", help="Folder that image paths are relative to (default: the CSV's folder).")
    ] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the metrics as JSON to this file ('-' for stdout).")] = None,
    revision: RevisionOpt = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    workers: Annotated[Optional[int], typer.Option(min=0)] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps.")] = "auto",
    dtype: Annotated[
        str, typer.Option(help="float32 (default: exact and the same on every machine), bfloat16, float16 or auto.")
    ] = "float32",
    tta: Annotated[bool, typer.Option(help="Average predictions over the image and its mirror.")] = False,
) -> None:
    """Measure accuracy with the paper's binary protocol on a labelled benchmark."""
    from imgsent.cli.render import render_metrics
    from imgsent.evaluate import evaluate_labels
    from imgsent.predictor import Predictor

    try:
        predictor = Predictor.from_pretrained(
            None if model == "default" else model, revision=revision, device=device, dtype=dtype
        )
        report = evaluate_labels(predictor, labels, images_root=images_root, batch_size=batch_size, workers=workers, tta=tta)
    except ImgsentError as exc:
        fail(exc)
    render_metrics(report, err)
    if json_out is not None:
        text = report.to_json()
        if str(json_out) == "-":
            sys.stdout.write(text + "\n")
        else:
            json_out.write_text(text + "\n", encoding="utf-8")


def distill_app() -> typer.Typer:
    from imgsent.cli.distill import distill_app as build

    return build()


def main() -> None:
    """Console-script entry point."""
    app()


_register()
