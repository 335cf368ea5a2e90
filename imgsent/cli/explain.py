"""``imgsent explain``: saliency overlays for image files and folders, and an index of what was explained."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from imgsent.cli.common import EXIT_OK, EXIT_PARTIAL, ModelOpt, RevisionOpt, err, no_images_error
from imgsent.cli.options import check_run_options, progress_bar

EPILOG = (
    "**Examples**\n\n"
    "    imgsent explain photo.jpg -o explanations/\n\n"
    "    imgsent explain photos/ -r -o explanations/ --index explained.jsonl\n\n"
    "    imgsent explain 'photos/*.jpg' -o explanations/ --model ./my-vit\n\n"
    "Needs `pip install 'imgsent[explain]'`."
)
INDEX_COLUMNS = ("source", "overlay", "label", "confidence", "error")
"""Columns of the index file: the input, its overlay PNG, the label explained, its confidence, or the error."""


def explain(
    paths: Annotated[
        list[str], typer.Argument(metavar="PATHS...", help="Image files, folders or glob patterns such as 'photos/*.jpg'.",
                                  show_default=False)
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the overlay PNGs.")] = Path("explanations"),
    index: Annotated[
        Optional[Path],
        typer.Option("--index", help="File listing what was explained (.csv or .jsonl). Default: OUTPUT/index.csv."),
    ] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")] = False,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    progress: Annotated[
        Optional[bool], typer.Option("--progress/--no-progress", help="Progress bar on stderr. Default: when stderr is a terminal.")
    ] = None,
) -> None:
    """Write, for each image, a PNG overlay of where the model looked for its predicted class
    (Grad-CAM), and an index of every input with its overlay, label and confidence, or its error.

    Inputs, output and the grad-cam package are checked before the model loads. An unreadable
    image gets an error row in the index and never stops the run.
    """
    from imgsent.classify import plan_classify
    from imgsent.errors import require_extra
    from imgsent.outputs import check_writable, write_table

    check_run_options(device=device, dtype="float32")
    output = check_writable(output, kind="overlay folder", folder=True)
    index = check_writable(index if index is not None else output / "index.csv", kind="index file")
    plan = plan_classify(paths, recursive=recursive)  # the same scan as classify
    files = plan.files
    if not files:
        raise no_images_error(plan.inputs, plan.subfolders)
    require_extra("pytorch_grad_cam", "explain")

    from imgsent.explain import explain_files
    from imgsent.predictor import Predictor

    predictor = Predictor.from_pretrained(model, revision=revision, device=device, dtype="float32")
    with progress_bar("explain", enabled=err.is_terminal if progress is None else progress, total=len(files)) as bar:
        written = explain_files(predictor, files, output, on_progress=bar)
    rows = [_index_row(item) for item in written]
    write_table(index, rows, INDEX_COLUMNS)
    failed = sum(row["error"] is not None for row in rows)
    for row in rows:
        if row["error"] is not None:
            err.print(f"[red]{escape(row['source'])}: {escape(row['error'])}[/]", highlight=False)
    err.print(f"{len(rows) - failed} explained, {failed} errors -> {output}; index -> {index}", markup=False)
    raise typer.Exit(EXIT_PARTIAL if failed else EXIT_OK)


def _index_row(item: Any) -> dict[str, Any]:
    """One index row from what :func:`imgsent.explain.explain_files` returned for one input."""
    return {
        "source": str(item.source),
        "overlay": None if item.path is None else str(item.path),
        "label": item.label,
        "confidence": None if item.confidence is None else round(item.confidence, 6),
        "error": item.error,
    }
