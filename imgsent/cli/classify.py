"""``imgsent classify``: stream image files into CSV or JSONL."""

from __future__ import annotations

import importlib.util
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from typer.core import TyperArgument, TyperOption

from imgsent.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, no_images_error, BackendOpt, ModelOpt, RevisionOpt, err
from imgsent.cli.options import check_run_options, progress_bar
from imgsent.errors import ImgsentError
from imgsent.outputs import RESULT_COLUMNS

if TYPE_CHECKING:
    from imgsent.classify import ClassifyPlan, ClassifySummary
    from imgsent.predictor import Predictor

EPILOG = (
    "**Examples**\n\n"
    "    imgsent classify photos/ -o out.csv\n\n"
    "    imgsent classify 'photos/**/*.jpg' -o out.jsonl --resume\n\n"
    "    imgsent classify photos/ -o out.csv --overwrite\n\n"
    "    imgsent classify photos/ -r -o part-$SLURM_ARRAY_TASK_ID.csv --shard $SLURM_ARRAY_TASK_ID/8\n\n"
    "    imgsent classify a.jpg b.png --model org/imgsent-vit-b16 --revision v1.0\n\n"
    "    imgsent classify clips/ -o out.csv --frames 16 --frame-rows\n\n"
    "**Columns** (one row per file):\n\n"
    + "".join(f"* `{column.name}`: {column.help}\n" for column in RESULT_COLUMNS)
    + "\n**Exit codes**: 0 every file classified; 1 fatal error (nothing or part written); "
    "2 bad arguments, missing inputs, no images, or an output that already holds rows without --resume or "
    "--overwrite (found before loading the model; nothing written); "
    "3 finished, but some files were unreadable (they have error rows; 0 under torchrun, so the other ranks go on); "
    "4 a missing optional package (the message names the extra); 130 interrupted (rerun with --resume)."
)


def classify(
    ctx: typer.Context,
    paths: Annotated[
        list[str], typer.Argument(metavar="PATHS...", help="Image files, folders or glob patterns such as 'photos/*.jpg'.",
                                  show_default=False)
    ],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output file (.csv or .jsonl). Default: stdout.")] = None,
    fmt: Annotated[
        Optional[str],
        typer.Option("--format", "-f", help="csv or jsonl. Default: from the output's extension (.csv, .jsonl, .ndjson); csv on stdout."),
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
        bool, typer.Option("--resume", help="Continue --output: skip the files it holds and append the rest (same setup).")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --output if it already holds rows (without it, classify refuses).")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="With --resume: append even if the file was made with another model, revision, dtype, "
                                     "engine, --binary, --min-confidence, --frames or --frame-rows (mixes setups in one file)."),
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
    """Classify image and video files and write one row per file (columns below).

    Rows are written as they are produced, so an interrupted run loses at most one batch;
    rerun with --resume to finish it. Unreadable files get an error row and never stop the run.
    An output that already holds rows is never replaced without --overwrite. The output gets a
    sidecar OUTPUT.imgsent.json recording the model, revision, dtype, engine, --binary,
    --min-confidence, --frames and --frame-rows; --resume refuses to mix rows made otherwise.
    Videos (.mp4 .mov .m4v .webm .mkv .avi; need imgsent[video]) and animated GIF, WebP and PNG
    get the mean of --frames sampled frames.
    """
    from imgsent.cli import STARTED as started

    _check_usage(output=output, fmt=fmt, device=device, dtype=dtype, backend=backend, shard=shard, resume=resume,
                 overwrite=overwrite, force=force, report=report)
    plan, launched, run_device = _plan(paths, output=output, fmt=fmt, recursive=recursive, shard=shard, device=device,
                                       mode="resume" if resume else "overwrite" if overwrite else "new")
    from imgsent.classify import check_setup
    from imgsent.resume import check_options

    # --binary, --min-confidence, --frames, --frame-rows are checked against a resumed file before torch and the model load
    check_options(plan.existing.record, binary=binary, min_confidence=min_confidence, output=plan.output or "", force=force,
                  frames=frames, frame_rows=frame_rows)
    from imgsent.predictor import Predictor

    predictor = Predictor.from_pretrained(model, revision=revision, device=run_device, dtype=dtype, backend=backend)
    loaded = time.perf_counter()
    check_setup(predictor, plan, binary=binary, min_confidence=min_confidence, force=force, frames=frames,
                frame_rows=frame_rows)
    _print_header(predictor, plan)
    summary = _run(ctx, predictor, plan, progress=progress, batch_size=batch_size, workers=workers, binary=binary,
                   min_confidence=min_confidence, force=force, frames=frames, frame_rows=frame_rows)
    if report is not None and plan.output is not None:
        from imgsent.report import write_report

        write_report(plan.output, report)
    _print_summary(summary, plan, wall=time.perf_counter() - started, startup=loaded - started,
                   min_confidence=min_confidence, report=report)
    # torchrun stops every rank when one exits non-zero, so a rank with error rows must exit 0 there
    raise typer.Exit(EXIT_PARTIAL if summary.errors and not launched else EXIT_OK)


def _check_usage(*, output: Optional[Path], fmt: Optional[str], device: str, dtype: str, backend: str,
                 shard: Optional[str], resume: bool, overwrite: bool, force: bool, report: Optional[Path]) -> None:
    """Reject bad values and contradictory options (exit 2), before anything is read or loaded."""
    from imgsent.shard import Shard

    check_run_options(device=device, dtype=dtype, fmt=fmt, backend=backend)
    if shard is not None:
        try:
            Shard.parse(shard)
        except ImgsentError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--shard'") from None
    if resume and overwrite:
        raise typer.BadParameter("--resume continues the output and --overwrite replaces it: pass one of them.",
                                 param_hint="'--overwrite'")
    for flag, given in (("--resume", resume), ("--overwrite", overwrite), ("--report", report is not None)):
        if given and output is None:
            raise typer.BadParameter(f"{flag} needs --output: it works on the rows written there.", param_hint=f"'{flag}'")
    if force and not resume:
        raise typer.BadParameter("--force only applies to --resume.", param_hint="'--force'")
    if report is not None:  # before the model loads: an unwritable report is exit 2, not a traceback at the end
        from imgsent.outputs import check_writable

        check_writable(report, kind="report")


def _plan(paths: list[str], *, output: Optional[Path], fmt: Optional[str], recursive: bool, shard: Optional[str],
          device: str, mode: str) -> tuple[ClassifyPlan, bool, str]:
    """The run's plan (shard, output policy, resume state, file list), or exit when there is nothing to do."""
    from imgsent.classify import plan_classify
    from imgsent.shard import plan_shard

    placed = plan_shard(shard, output, device=device)  # under torchrun: this rank's part and part file
    plan = plan_classify(paths, output=placed.output, fmt=fmt, mode=mode, recursive=recursive,  # type: ignore[arg-type]
                         shard=placed.shard)
    if not plan.files and not plan.skipped and placed.shard is None:  # a shard of a small folder may be empty
        raise no_images_error(plan.inputs, plan.subfolders)
    if plan.mode == "resume" and plan.existing.rows and not plan.skipped:
        err.print(
            f"[bold yellow]WARNING: --resume found {plan.existing.rows} rows in {plan.output}, but none of them match these "
            f"inputs.[/] All {_images(len(plan.files))} will be classified and appended. If the earlier run used other "
            "paths (another folder or a moved folder), stop now (Ctrl-C) and check them."
        )
    if plan.mode == "resume" and not plan.files:
        err.print(f"Nothing to do: all {_images(plan.skipped)} are already in {plan.output}.")
        raise typer.Exit(EXIT_OK)
    if plan.videos and importlib.util.find_spec("av") is None:  # once, not once per file
        err.print(f"[bold yellow]WARNING: {plan.videos} video file(s) need PyAV;[/] they will get error rows. "
                  "Install it with: pip install 'imgsent\\[video]'")
    return plan, placed.launched, placed.device


def _run(ctx: typer.Context, predictor: Predictor, plan: ClassifyPlan, *, progress: Optional[bool],
         **options: object) -> ClassifySummary:
    """Run the plan under a progress bar; on Ctrl-C, say how many rows are safe and how to finish."""
    from imgsent.classify import ClassifyProgress, run_classify

    show = err.is_terminal if progress is None else progress
    with progress_bar("classify", enabled=show, total=len(plan.files)) as bar:
        def on_progress(state: ClassifyProgress) -> None:
            if bar is not None:
                bar(state.done, state.total, rate=state.images_per_second)

        try:
            return run_classify(predictor, plan, on_progress=on_progress, **options)  # type: ignore[arg-type]
        except KeyboardInterrupt:
            if plan.output is None:
                err.print("[bold yellow]Interrupted.[/] The rows so far were written.")
                raise typer.Exit(EXIT_INTERRUPTED) from None
            from imgsent.results import open_results

            # count what the file holds: the interrupt may fall between a write and its callback
            safe = sum(1 for _ in open_results(plan.output, missing_ok=True).iter_rows())
            err.print(f"[bold yellow]Interrupted.[/] {safe} rows are safe in {plan.output}.")
            err.print(f"Finish the run with:\n  {_resume_command(ctx)}")
            raise typer.Exit(EXIT_INTERRUPTED) from None


def _print_header(predictor: Predictor, plan: ClassifyPlan) -> None:
    """One stderr line on what this run is: model, revision, device, dtype, engine, inputs, output."""
    from imgsent.config import trained_labels

    p = predictor
    note = "" if "neutral" in trained_labels(p.config) else " (binary in practice: never predicts neutral)"
    dtype = str(p.dtype).removeprefix("torch.")
    n = len(plan.files)
    todo = (f"{n} files ({plan.videos} videos)" if plan.media else _images(n)) + (
        f" ({plan.skipped} already in the output)" if plan.mode == "resume" else "")
    err.print(
        f"model {p.name}{note}, revision {p.revision or ('bundled' if p.name == 'default' else '-')}, device {p.device}, "
        f"dtype {dtype}, engine {escape(p.engine_description)}; {todo} -> {plan.output or 'stdout'} ({plan.format})"
    )


def _print_summary(summary: ClassifySummary, plan: ClassifyPlan, *, wall: float, startup: float, min_confidence: float,
                   report: Optional[Path]) -> None:
    """The last stderr line: wall time (start-up included), counts, and the rate the progress bar showed."""
    shown = ("negative", "neutral", "positive") + (("uncertain",) if min_confidence > 0 else ())
    counts = ", ".join(f"{label} {summary.counts.get(label, 0)}" for label in shown)
    resumed = f"; {summary.skipped} already in {plan.output} (resume)" if plan.mode == "resume" else ""
    err.print(
        f"Done in {_duration(wall)} ({_duration(startup)} start-up and model load): {summary.classified} classified "
        f"({counts}), {summary.errors} errors{resumed}; {summary.images_per_second:.1f} images/s over "
        f"{_duration(summary.seconds)} of classifying" + (f" -> {plan.output}" if plan.output else "")
        + (f", report -> {report}" if report else "")
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
        elif isinstance(param, TyperOption) and param.name not in ("resume", "overwrite", "progress") and value not in (None, False):
            if value == param.default and not param.is_flag:
                continue
            parts.extend([param.opts[0]] if param.is_flag else [param.opts[0], str(value)])
    return shlex.join([*parts, "--resume"])
