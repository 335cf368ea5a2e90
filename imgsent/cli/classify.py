"""``imgsent classify``: stream image files into CSV or JSONL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgsent.cli.app import EXIT_OK, EXIT_PARTIAL, BackendOpt, ModelOpt, RevisionOpt, err, fail
from imgsent.errors import ImgsentError
from imgsent.outputs import OutputFormat

EPILOG = (
    "**Examples**\n\n"
    "    imgsent classify photos/ -o out.csv\n\n"
    "    imgsent classify photos/ --recursive -o out.jsonl --resume\n\n"
    "    imgsent classify a.jpg b.png --model org/imgsent-vit-b16 --revision v1.0\n\n"
    "**Exit codes**: 0 every file classified; 1 fatal error (nothing or part written); "
    "2 bad arguments; 3 finished, but some files were unreadable (they have error rows)."
)


def classify(
    paths: Annotated[list[Path], typer.Argument(help="Image files and folders.", show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output file (.csv or .jsonl). Default: stdout.")] = None,
    fmt: Annotated[
        Optional[str], typer.Option("--format", "-f", help="csv or jsonl. Default: from the output's extension, else csv.")
    ] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")] = False,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per forward pass.")] = 32,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", min=0, help="Decoding processes. Default: automatic.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto (float32 on CPU, bf16/fp16 on CUDA), float32, bfloat16 or float16.")] = "auto",
    backend: BackendOpt = "auto",
    binary: Annotated[bool, typer.Option(help="Drop neutral and compare negative with positive (the paper's protocol).")] = False,
    resume: Annotated[bool, typer.Option(help="Skip files already in --output and append the rest.")] = False,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Progress bar on stderr. Default: when stderr is a terminal.")] = None,
) -> None:
    """Classify image files and write one row per file: path, label, probabilities, error.

    Rows are written as they are produced, so an interrupted run loses at most one batch;
    rerun with --resume to finish it. Unreadable files get an error row and never stop the run.
    """
    from imgsent.classify import classify_files
    from imgsent.outputs import infer_format
    from imgsent.predictor import Predictor

    if fmt is not None and fmt not in ("csv", "jsonl"):
        raise typer.BadParameter(f"--format must be csv or jsonl, got {fmt!r}.")
    if resume and output is None:
        raise typer.BadParameter("--resume needs --output: it reads the rows already written there.")
    chosen: OutputFormat = infer_format(output, fmt)  # type: ignore[arg-type]
    show = err.is_terminal if progress is None else progress
    try:
        predictor = Predictor.from_pretrained(model, revision=revision, device=device, dtype=dtype, backend=backend)
        with _progress_bar(show) as on_progress:
            summary = classify_files(
                predictor, paths, output=output, fmt=chosen, recursive=recursive, resume=resume,
                batch_size=batch_size, workers=workers, binary=binary, on_progress=on_progress,
            )
    except ImgsentError as exc:
        fail(exc)
    counts = ", ".join(f"{label} {summary.counts.get(label, 0)}" for label in ("negative", "neutral", "positive"))
    err.print(
        f"{summary.classified} classified ({counts}), {summary.errors} errors, {summary.skipped} skipped (resume); "
        f"{summary.images_per_second:.1f} images/s"
        + (f" -> {output}" if output else ""),
        highlight=False,
    )
    raise typer.Exit(EXIT_PARTIAL if summary.errors else EXIT_OK)


class _progress_bar:
    """A Rich progress bar on stderr whose total appears once the folder scan finishes."""

    def __init__(self, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = (
            Progress(TextColumn("classify"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err)
            if enabled
            else None
        )
        self._task = None

    def __enter__(self):  # noqa: ANN204
        if self._progress is None:
            return None
        self._progress.start()
        self._task = self._progress.add_task("classify", total=None)
        return self._update

    def _update(self, done: int, total: int | None) -> None:
        assert self._progress is not None and self._task is not None
        self._progress.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
