"""Classify files into a CSV or JSONL file: the library side of ``imgsent classify``.

:func:`plan_classify` does all that needs no model (inputs, format, output policy, resume state,
one scan); :func:`run_classify` writes the predictor's batches; :func:`classify_files` does both.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from imgsent.options import PredictOptions
from imgsent.outputs import OutputFormat, Prediction, ResultWriter, check_writable, infer_format, output_columns
from imgsent.results import RunRecord, sidecar_path, write_record
from imgsent.resume import OutputMode, ResumeState, check_mode, check_record, path_key, read_resume_state
from imgsent.scan import expand_inputs, has_video_extension, iter_image_files
from imgsent.shard import Shard, iter_shard_files
from imgsent.torn_lines import cut_torn_line
from imgsent.video import DEFAULT_FRAMES, check_frames, may_hold_media
from imgsent.video_outputs import FramePrediction
from imgsent.video_predict import iter_media_batches

if TYPE_CHECKING:
    from imgsent.predictor import Predictor

def images_per_second(images: int, seconds: float) -> float:
    """The one throughput of a run: images classified in it over the seconds since its first batch was asked for."""
    return images / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class ClassifyProgress:
    """Where a run stands, passed to ``on_progress`` after each written batch (and once at the start).

    Attributes:
        done: Files written in this run (rows with a label or an error).
        total: Files this run classifies.
        seconds: Seconds since the first batch was asked for (model load not included).

    Example:
        >>> ClassifyProgress(done=50, total=200, seconds=2.0).images_per_second
        25.0
    """
    done: int
    total: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        """``done / seconds``: the same rate the run's :class:`ClassifySummary` reports at the end."""
        return images_per_second(self.done, self.seconds)


ProgressCallback = Callable[[ClassifyProgress], None]


@dataclass
class ClassifySummary:
    """What a classify run did.

    Attributes:
        counts: Number of images per predicted label (``"uncertain"`` included).
        errors: Number of files that produced an error row.
        skipped: Files skipped because a resumed output held them already.
        seconds: Seconds from the first batch asked for to the last row written (model load not included).
        resumed_rows: Rows the output held before a resumed run (0 otherwise).
        torn: Bytes of a torn last line cut off before a resumed run appended (0 otherwise).

    Example:
        >>> summary = ClassifySummary(Counter(positive=3, negative=1), errors=1, seconds=2.0)
        >>> summary.classified, summary.images_per_second
        (4, 2.5)
    """
    counts: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    resumed_rows: int = 0
    torn: int = 0

    @property
    def classified(self) -> int:
        """Images that got a label."""
        return sum(self.counts.values())

    @property
    def images_per_second(self) -> float:
        """Classified and failed files over :attr:`seconds`; the rate the progress bar shows."""
        return images_per_second(self.classified + self.errors, self.seconds)


@dataclass(frozen=True)
class ClassifyPlan:
    """A run decided before any model is loaded, from :func:`plan_classify`.

    Attributes:
        inputs: The inputs, with glob patterns expanded.
        files: The image files to classify, in scan order (files already in a resumed output left out).
        output: The results file; ``None`` for stdout.
        format: ``"csv"`` or ``"jsonl"``.
        mode: ``"new"``, ``"resume"`` or ``"overwrite"``.
        shard: The part of the input this run classifies; ``None`` for all.
        skipped: Image files left out because the resumed output holds them.
        subfolders: Sub-folders not entered (without ``recursive``), counted when no image was found.
        existing: What the resumed output holds (empty unless ``mode="resume"``).
        videos: Of ``files``, those with a video extension (classified from sampled frames; need PyAV).
        media: Whether an input, in any shard, is named like a video, a GIF or an APNG
            (:func:`imgsent.video.may_hold_media`): a new output then gets the ``frames`` column.
    """
    inputs: list[str]
    files: list[str]
    output: Path | None
    format: OutputFormat
    mode: OutputMode
    shard: Shard | None = None
    skipped: int = 0
    subfolders: int = 0
    existing: ResumeState = field(default_factory=ResumeState)
    videos: int = 0
    media: bool = False


def plan_classify(
    paths: Iterable[str | os.PathLike[str]],
    *,
    output: str | os.PathLike[str] | None = None,
    fmt: OutputFormat | None = None,
    mode: OutputMode = "new",
    recursive: bool = False,
    shard: Shard | None = None,
) -> ClassifyPlan:
    """Decide a run without loading a model: inputs, format, output policy, resume state and the file list.

    The output is read once (for resume) and the inputs scanned once (names only, no decoding).

    Args:
        paths: Files, folders and glob patterns.
        output: Results file; ``None`` for stdout.
        fmt: ``"csv"`` or ``"jsonl"``; ``None`` chooses by the output's extension (CSV for stdout).
        mode: ``"new"`` refuses an output that already holds rows; ``"resume"`` skips the paths
            it holds and appends the rest; ``"overwrite"`` replaces it.
        recursive: Descend into sub-folders.
        shard: Only the files of this :class:`~imgsent.shard.Shard`; ``None`` for all.

    Returns:
        A :class:`ClassifyPlan`.

    Raises:
        OutputFormatError: The output's extension names no format and ``fmt`` is ``None``.
        InputNotFoundError: Some inputs do not exist.
        OutputExistsError: ``mode="new"`` and the output already holds rows.
        OutputNotWritableError: The output cannot be written.
        ResumeMismatchError: ``mode="resume"`` onto a file in another or an unknown format.
        InvalidConfigError: An unknown ``mode``, or resume or overwrite without an output.

    Example:
        >>> plan = plan_classify(["examples/images"])
        >>> len(plan.files), plan.format, plan.mode
        (6, 'csv', 'new')
    """
    if output is not None:  # first: "it is a folder" says more than "no extension"
        check_writable(output, kind="results file")
    chosen = infer_format(output, fmt)
    check_mode(mode, output)
    inputs = expand_inputs(paths)
    existing = ResumeState()
    if output is not None:
        if mode == "resume":
            existing = read_resume_state(output, chosen)
    cwd = os.getcwd()
    files: list[str] = []
    skipped = 0
    for path in iter_shard_files(inputs, shard, recursive=recursive):
        if existing.done and path_key(path, cwd) in existing.done:
            skipped += 1
        else:
            files.append(path)
    subfolders = 0 if files or skipped or recursive else sum(_subfolders(p) for p in inputs if os.path.isdir(p))
    # every shard gets the same columns: they are chosen from all the inputs (by name only)
    media = may_hold_media(files if shard is None and not skipped else iter_image_files(inputs, recursive=recursive))
    return ClassifyPlan(inputs, files, None if output is None else Path(output), chosen, mode, shard, skipped,
                        subfolders, existing, sum(map(has_video_extension, files)), media)


def run_record(
    predictor: Predictor, fmt: OutputFormat, *, binary: bool, min_confidence: float = 0.0,
    frames: int = DEFAULT_FRAMES, frame_rows: bool = False,
) -> RunRecord:
    """The :class:`~imgsent.results.RunRecord` of a run with this predictor and these settings."""
    import imgsent

    revision = predictor.revision
    if revision is None and predictor.name == "default":
        revision = f"bundled with imgsent {imgsent.__version__}"
    return RunRecord(
        format=fmt,
        model=predictor.name,
        revision=revision,
        dtype=str(predictor.dtype).removeprefix("torch."),
        binary=binary,
        cwd=os.getcwd(),
        imgsent_version=imgsent.__version__,
        min_confidence=float(min_confidence),
        engine=predictor.backend,
        frames=frames,
        frame_rows=frame_rows,
    )


def check_setup(
    predictor: Predictor, plan: ClassifyPlan, *, binary: bool, min_confidence: float, force: bool,
    frames: int = DEFAULT_FRAMES, frame_rows: bool = False,
) -> RunRecord:
    """This run's record, checked against the plan's output (see :func:`run_classify`); changes nothing."""
    record = run_record(predictor, plan.format, binary=binary, min_confidence=min_confidence, frames=frames,
                        frame_rows=frame_rows)
    if plan.mode == "resume":
        check_record(plan.existing.record, record, output=plan.output or "", force=force)
    check_mode(plan.mode, plan.output)
    return record


def run_classify(
    predictor: Predictor,
    plan: ClassifyPlan,
    *,
    batch_size: int = 32,
    workers: int | None = None,
    binary: bool = False,
    min_confidence: float = 0.0,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
    frames: int = DEFAULT_FRAMES,
    frame_rows: bool = False,
) -> ClassifySummary:
    """Classify the files of ``plan`` and write one row per file as it goes.

    Rows are appended batch by batch and flushed to disk, so a crash loses at most the batch in
    flight. A file output gets a sidecar ``<output>.imgsent.json`` (its :class:`~imgsent.results.RunRecord`);
    a resumed output is checked against this run's record, then a torn last row is cut off.

    Args:
        predictor: A loaded :class:`~imgsent.Predictor`.
        plan: From :func:`plan_classify`.
        batch_size: Images per forward pass.
        workers: Decoding processes (``None``: automatic).
        binary: Drop neutral (the paper's protocol).
        min_confidence: Label predictions less confident than this ``"uncertain"``.
        force: Resume even when the output was made with another model, revision, dtype,
            engine, protocol, ``min_confidence``, ``frames`` or ``frame_rows``.
        on_progress: Called with a :class:`ClassifyProgress` once before the first batch and
            after each written batch.
        frames: Frames sampled uniformly over each video or animated GIF, WebP or PNG (default 8);
            its row holds their mean probabilities and, when ``plan.media``, their count in the
            ``frames`` column (see :mod:`imgsent.video_predict`).
        frame_rows: Also write one row per sampled frame, path ``<file>#t=<seconds>``, with a
            ``time`` column; a resumed run never writes a frame row twice.

    Returns:
        A :class:`ClassifySummary`.

    Raises:
        ResumeMismatchError: Resuming an output made with another setup (without ``force``);
            the file is left untouched.
        OutputExistsError: ``plan.mode`` is ``"new"`` and the output gained rows since the plan.
    """
    options = PredictOptions(batch_size=batch_size, workers=workers, binary=binary, min_confidence=min_confidence)
    check_frames(frames)
    record = check_setup(predictor, plan, binary=binary, min_confidence=options.min_confidence, force=force,
                         frames=frames, frame_rows=frame_rows)
    summary = ClassifySummary(skipped=plan.skipped, resumed_rows=plan.existing.rows)
    stream, new_file = _open_output(plan, record, summary)
    columns = output_columns(frames=frame_rows or plan.media, time=frame_rows)
    if not new_file and plan.format == "csv" and plan.existing.columns:
        columns = plan.existing.columns  # appended rows must fit the header already written
    try:
        writer = ResultWriter(stream, plan.format, write_header=new_file, columns=columns)
        start = time.perf_counter()
        total = len(plan.files)
        if on_progress is not None:
            on_progress(ClassifyProgress(0, total, 0.0))
        done, cwd = 0, os.getcwd()
        for predictions in iter_media_batches(predictor, plan.files, options, frames=frames, frame_rows=frame_rows):
            if plan.existing.done:  # frame rows a killed run wrote before its file's row
                predictions = [p for p in predictions if path_key(p.source, cwd) not in plan.existing.done]
            writer.write(predictions)
            _tally(summary, predictions)
            done += sum(not isinstance(p, FramePrediction) for p in predictions)
            summary.seconds = time.perf_counter() - start
            if on_progress is not None:
                on_progress(ClassifyProgress(done, total, summary.seconds))
    finally:
        if plan.output is not None:
            stream.close()
    return summary


def _open_output(plan: ClassifyPlan, record: RunRecord, summary: ClassifySummary) -> tuple[TextIO, bool]:
    """The stream to write to, and whether it is new (needs a CSV header); writes the sidecar."""
    if plan.output is None:
        return sys.stdout, True
    output = plan.output
    output.parent.mkdir(parents=True, exist_ok=True)
    appending = plan.mode == "resume" and output.is_file() and output.stat().st_size > 0
    if appending:
        summary.torn = cut_torn_line(output, fsync=True)  # only complete rows are trusted
        appending = output.stat().st_size > 0
    if not appending or not sidecar_path(output).exists():  # a new file, or one from before records existed
        write_record(output, record)
    # surrogateescape keeps file names that are not valid UTF-8 byte-exact
    stream = open(output, "a" if appending else "w", encoding="utf-8", newline="", errors="surrogateescape")
    return stream, not appending


def classify_files(
    predictor: Predictor,
    paths: Iterable[str | os.PathLike[str]],
    *,
    output: str | os.PathLike[str] | None = None,
    fmt: OutputFormat | None = None,
    mode: OutputMode = "new",
    recursive: bool = False,
    force: bool = False,
    batch_size: int = 32,
    workers: int | None = None,
    binary: bool = False,
    min_confidence: float = 0.0,
    shard: Shard | None = None,
    on_progress: ProgressCallback | None = None,
    frames: int = DEFAULT_FRAMES,
    frame_rows: bool = False,
) -> ClassifySummary:
    """Classify every image file under ``paths`` and write one row per file: :func:`plan_classify` then :func:`run_classify`.

    An existing results file is never replaced by accident: with ``mode="new"`` (the default)
    a non-empty ``output`` raises :class:`~imgsent.errors.OutputExistsError` and is left as it
    is; ``mode="resume"`` skips the paths it holds (matched after normalisation, so ``./a.jpg``
    and its absolute path are the same file) and appends the rest; ``mode="overwrite"`` replaces it.

    Args:
        predictor: A loaded :class:`~imgsent.Predictor`.
        paths: Files, folders and glob patterns.
        output: Results file; ``None`` writes to stdout.
        fmt: ``"csv"`` or ``"jsonl"``; ``None`` chooses by the output's extension.
        mode: ``"new"``, ``"resume"`` or ``"overwrite"`` (see above).
        recursive: Descend into sub-folders.
        force: With ``mode="resume"``, append even when the output was made with another
            model, revision, dtype, engine, protocol, ``min_confidence``, ``frames`` or ``frame_rows``.
        batch_size: Images per forward pass.
        workers: Decoding processes (``None``: automatic).
        binary: Drop neutral (the paper's protocol).
        min_confidence: Label predictions less confident than this ``"uncertain"`` (counted in
            ``summary.counts["uncertain"]``).
        shard: Only the files of this :class:`~imgsent.shard.Shard` (by a hash of their path
            relative to the folder given); ``None`` for all. Works with resume.
        on_progress: Called with a :class:`ClassifyProgress` after each written batch.
        frames: Frames per video or animated image, as in :func:`run_classify`.
        frame_rows: One row per sampled frame too, as in :func:`run_classify`.

    Returns:
        A :class:`ClassifySummary`.

    Raises:
        OutputExistsError: ``mode="new"`` and ``output`` already holds rows; nothing was changed.
        ResumeMismatchError: Resuming a file in another format or made with another setup (without ``force``).
        OutputFormatError, InputNotFoundError, OutputNotWritableError, InvalidConfigError: As :func:`plan_classify`.

    Example:
        >>> from imgsent import Predictor
        >>> summary = classify_files(Predictor.from_pretrained(), ["examples/images", "missing.jpg"], output="out.csv")  # doctest: +SKIP
        >>> summary.classified, summary.errors  # doctest: +SKIP
        (6, 1)
    """
    plan = plan_classify(paths, output=output, fmt=fmt, mode=mode, recursive=recursive, shard=shard)
    return run_classify(predictor, plan, batch_size=batch_size, workers=workers, binary=binary,
                        min_confidence=min_confidence, force=force, on_progress=on_progress, frames=frames,
                        frame_rows=frame_rows)


def _subfolders(path: str) -> int:
    with os.scandir(path) as entries:
        return sum(1 for entry in entries if entry.is_dir())


def _tally(summary: ClassifySummary, predictions: list[Prediction]) -> None:
    for prediction in predictions:
        if isinstance(prediction, FramePrediction):
            continue
        if prediction.ok:
            summary.counts[prediction.label or ""] += 1
        else:
            summary.errors += 1
