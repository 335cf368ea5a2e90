"""``imgsent classify``: stream image files into CSV or JSONL."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperArgument, TyperOption

from imgsent.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, BackendOpt, ModelOpt, RevisionOpt, err
from imgsent.cli.options import check_run_options, progress_bar
from imgsent.errors import ImgsentError

EPILOG = (
    "**Examples**\n\n"
    "    imgsent classify photos/ -o out.csv\n\n"
    "    imgsent classify 'photos/**/*.jpg' -o out.jsonl --resume\n\n"
    "    imgsent classify photos/ -r -o part-$SLURM_ARRAY_TASK_ID.csv --shard $SLURM_ARRAY_TASK_ID/8\n\n"
    "    imgsent classify a.jpg b.png --model org/imgsent-vit-b16 --revision v1.0\n\n"
    "    imgsent classify clips/ -o out.csv --frames 16 --frame-rows\n\n"
    "**Exit codes**: 0 every file classified; 1 fatal error (nothing or part written); "
    "2 bad arguments, missing inputs or no images (found before loading the model; nothing written); "
    "3 finished, but some files were unreadable (they have error rows; 0 under torchrun, so the other ranks go on); "
    "130 interrupted (rerun with --resume)."
)


def classify(
    ctx: typer.Context,
    paths: Annotated[
        list[str], typer.Argument(metavar="PATHS...", help="Image files, folders or glob patterns such as 'photos/*.jpg'.",
                                  show_default=False)
    ],
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
    binary: Annotated[bool, typer.Option("--binary", help="Drop neutral and compare negative with positive (the paper's protocol).")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Skip files already in --output and append the rest (same model, revision, dtype).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --resume: append even if the file was made with another model, revision or dtype.")
    ] = False,
    progress: Annotated[
        Optional[bool], typer.Option("--progress/--no-progress", help="Progress bar on stderr. Default: when stderr is a terminal.")
    ] = None,
    min_confidence: Annotated[
        float,
        typer.Option("--min-confidence", min=0.0, max=1.0,
                     help="Label predictions whose calibrated confidence is below this 'uncertain' (probabilities kept)."),
    ] = 0.0,
    report: Annotated[
        Optional[Path], typer.Option("--report", help="Also write an HTML report of the run here (needs --output).")
    ] = None,
    shard: Annotated[
        Optional[str],
        typer.Option(help="Classify only part K of N (K from 0), by a hash of each path relative to its folder. Set by RANK/WORLD_SIZE under torchrun."),
    ] = None,
    frames: Annotated[
        int, typer.Option("--frames", min=1, help="Frames sampled uniformly over each video or animated GIF/WebP/PNG; its row is their mean.")
    ] = 8,
    frame_rows: Annotated[
        bool, typer.Option("--frame-rows", help="Also write one row per sampled frame: path FILE#t=SECONDS, with a time column.")
    ] = False,
) -> None:
    """Classify image and video files and write one row per file: path, label, probabilities, error.

    Rows are written as they are produced, so an interrupted run loses at most one batch;
    rerun with --resume to finish it. Unreadable files get an error row and never stop the run.
    The output gets a sidecar OUTPUT.imgsent.json recording the model, revision and dtype.
    Videos (.mp4 .mov .m4v .webm .mkv .avi; needs imgsent[video]) and animated GIF, WebP and PNG
    get the mean of --frames sampled frames and a frames column.
    """
    from imgsent.classify import classify_files, count_images, expand_inputs, run_record
    from imgsent.outputs import infer_format
    from imgsent.resume import ResumeState, check_record, read_resume_state
    from imgsent.shard import Shard, plan_shard

    check_run_options(device=device, dtype=dtype, fmt=fmt, backend=backend)
    if shard is not None:
        try:
            Shard.parse(shard)
        except ImgsentError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--shard'") from None
    if resume and output is None:
        raise typer.BadParameter("--resume needs --output: it reads the rows already written there.", param_hint="'--resume'")
    if force and not resume:
        raise typer.BadParameter("--force only applies to --resume.", param_hint="'--force'")
    if report is not None and output is None:
        raise typer.BadParameter("--report needs --output: the report is made from the rows written there.", param_hint="'--report'")
    plan = plan_shard(shard, output, device=device)  # under torchrun: this rank's part and part file
    output = plan.output
    chosen = infer_format(output, fmt)  # type: ignore[arg-type]
    inputs = expand_inputs(paths)
    state = read_resume_state(output, chosen) if resume and output is not None else ResumeState()
    count = count_images(inputs, recursive=recursive, done=state.done, shard=plan.shard)
    if count.total + count.done == 0 and plan.shard is None:  # a shard of a small folder may be empty
        hint = (
            f" The input holds {count.subfolders} sub-folder(s): add --recursive to look inside them."
            if count.subfolders else " Image files need an image extension such as .jpg or .png."
        )
        err.print(f"[bold red]error:[/] 0 images found in {', '.join(inputs)}.{hint}")
        raise typer.Exit(EXIT_USAGE)
    if resume and state.rows and not count.done:
        err.print(
            f"[bold yellow]WARNING: --resume found {state.rows} rows in {output}, but none of them match these "
            f"inputs.[/] All {_images(count.total)} will be classified and appended. If the earlier run used other "
            "paths (another folder or a moved folder), stop now (Ctrl-C) and check them."
        )
    if resume and count.total == 0:
        err.print(f"Nothing to do: all {_images(count.done)} are already in {output}.")
        raise typer.Exit(EXIT_OK)

    if count.videos and importlib.util.find_spec("av") is None:  # once, not once per file
        err.print(f"[bold yellow]WARNING: {count.videos} video file(s) need PyAV;[/] they will get error rows. "
                  "Install it with: pip install 'imgsent\\[video]'")

    from imgsent.predictor import Predictor

    predictor = Predictor.from_pretrained(model, revision=revision, device=plan.device, dtype=dtype, backend=backend)
    if resume:
        check_record(state.record, run_record(predictor, chosen, binary=binary), output=output or "", force=force)
    _print_header(predictor, count.total, count.done, output, chosen, resume=resume)
    show = err.is_terminal if progress is None else progress
    safe = [state.rows]

    with progress_bar("classify", enabled=show, total=count.total) as bar:
        def on_progress(done: int, total: int | None) -> None:
            safe[0] = state.rows + done
            if bar is not None:
                bar(done, total)

        try:
            summary = classify_files(
                predictor, inputs, output=output, fmt=chosen, recursive=recursive, resume=resume, force=force,
                batch_size=batch_size, workers=workers, binary=binary, min_confidence=min_confidence, total=count.total, shard=plan.shard,
                on_progress=on_progress, frames=frames, frame_rows=frame_rows,
            )
        except KeyboardInterrupt:
            if output is not None:  # count what the file holds: the interrupt may fall between a write and its callback
                safe[0] = read_resume_state(output, chosen).rows
            where = f"are safe in {output}" if output else "were written"
            err.print(f"[bold yellow]Interrupted.[/] {safe[0]} rows {where}.")
            if output is not None:
                err.print(f"Finish the run with:\n  {_resume_command(ctx)}")
            raise typer.Exit(EXIT_INTERRUPTED) from None
    if report is not None:
        from imgsent.report import write_report

        write_report(output, report, model=model or "default")  # type: ignore[arg-type]
    shown = ("negative", "neutral", "positive") + (("uncertain",) if min_confidence > 0 else ())
    counts = ", ".join(f"{label} {summary.counts.get(label, 0)}" for label in shown)
    resumed = f"; {summary.skipped} already in {output} (resume)" if resume else ""
    err.print(
        f"Done in {_duration(summary.seconds)}: {summary.classified} classified ({counts}), {summary.errors} errors"
        f"{resumed}; {summary.images_per_second:.1f} images/s" + (f" -> {output}" if output else "")
        + (f", report -> {report}" if report else "")
    )
    # torchrun stops every rank when one exits non-zero, so a rank with error rows must exit 0 there
    raise typer.Exit(EXIT_PARTIAL if summary.errors and not plan.launched else EXIT_OK)


def _print_header(predictor: object, total: int, done: int, output: Optional[Path], fmt: str, *, resume: bool) -> None:
    """One stderr line on what this run is: model, revision, device, dtype, engine, inputs, output."""
    from imgsent.config import trained_labels

    p = predictor  # a Predictor; typed loosely to keep torch out of this module's import
    labels = trained_labels(p.config)  # type: ignore[attr-defined]
    note = "" if "neutral" in labels else " (binary in practice: never predicts neutral)"
    dtype = str(p.dtype).removeprefix("torch.")  # type: ignore[attr-defined]
    todo = _images(total) + (f" ({done} already in the output)" if resume else "")
    err.print(
        f"model {p.name}{note}, revision {p.revision or ('bundled' if p.name == 'default' else '-')}, device {p.device}, dtype {dtype}, "  # type: ignore[attr-defined]
        f"engine {p.backend}; {todo} -> {output or 'stdout'} ({fmt})"  # type: ignore[attr-defined]
    )


def _images(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{seconds:.1f}s"


def _resume_command(ctx: typer.Context) -> str:
    """The command line that finishes this run: the same arguments plus --resume."""
    parts = ["imgsent", ctx.info_name or "classify"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if isinstance(param, TyperArgument):
            parts.extend(str(v) for v in value or ())
        elif isinstance(param, TyperOption) and param.name not in ("resume", "progress") and value not in (None, False):
            if value == param.default and not param.is_flag:
                continue
            parts.extend([param.opts[0]] if param.is_flag else [param.opts[0], str(value)])
    return shlex.join([*parts, "--resume"])
