"""``imgsent evaluate``: accuracy and macro-F1 on a labelled benchmark."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from imgsent.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_PARTIAL, BackendOpt, ModelOpt, RevisionOpt, err
from imgsent.cli.options import check_run_options, progress_bar

EPILOG = (
    "**Examples**\n\n"
    "    imgsent evaluate labels.csv\n\n"
    "    imgsent evaluate labels.csv --model ./my-model --json metrics.json\n\n"
    "**Protocol**: 3-class when the labels have neutral rows and the model was trained on neutral examples; "
    "otherwise the paper's binary protocol on the non-neutral rows (the skipped count is shown)."
)


def evaluate(
    labels: Annotated[
        Path,
        typer.Argument(metavar="LABELS", help="CSV with image,label[,agree] (negative/neutral/positive) or path,class (0, 1, 2)."),
    ],
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    images_root: Annotated[
        Optional[Path], typer.Option("--images-root", help="Folder that image paths are relative to (default: the CSV's folder).")
    ] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the metrics as JSON to this file ('-' for stdout).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1)] = 32,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", min=0)] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    dtype: Annotated[
        str, typer.Option(help="auto (float32 on CPU, bf16/fp16 on CUDA), float32, bfloat16 or float16.")
    ] = "auto",
    backend: BackendOpt = "auto",
    tta: Annotated[bool, typer.Option("--tta", help="Average predictions over the image and its mirror.")] = False,
    progress: Annotated[
        Optional[bool], typer.Option("--progress/--no-progress", help="Progress bar on stderr. Default: when stderr is a terminal.")
    ] = None,
) -> None:
    """Measure accuracy and macro-F1 on a labelled benchmark (3-class or the paper's binary protocol).

    Unreadable images are left out and counted; when none can be read, the metrics are n/a
    (null in --json) and the exit code is 1.
    """
    from imgsent.outputs import check_writable

    check_run_options(device=device, dtype=dtype, backend=backend)
    if json_out is not None and str(json_out) != "-":
        json_out = check_writable(json_out, kind="metrics file")
    from imgsent.cli.render import render_metrics
    from imgsent.evaluate import evaluate_labels, read_labels
    from imgsent.predictor import Predictor

    rows = read_labels(labels, images_root=images_root)  # a bad label file fails before the model loads
    predictor = Predictor.from_pretrained(model, revision=revision, device=device, dtype=dtype, backend=backend)
    err.print(f"evaluating {predictor!r} on {labels}", markup=False)
    with progress_bar("evaluate", enabled=err.is_terminal if progress is None else progress, total=len(rows)) as bar:
        report = evaluate_labels(
            predictor, labels, images_root=images_root, batch_size=batch_size, workers=workers, tta=tta, on_progress=bar
        )
    render_metrics(report, err)
    if json_out is not None:
        _write_json(report.to_json(), json_out)
    if not report.scored:
        why = (f"none of the {len(report.errors)} images could be read" if report.errors
               else f"all {report.skipped_neutral} rows are neutral, which the binary protocol skips")
        err.print(f"[bold red]error:[/] nothing was measured: {why}.")
    raise typer.Exit(EXIT_FAILURE if not report.scored else EXIT_PARTIAL if report.errors else EXIT_OK)


def _write_json(text: str, path: Path) -> None:
    """The report's JSON to a file, or to stdout for ``-``."""
    if str(path) == "-":
        sys.stdout.write(text + "\n")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
