"""Classify files into a CSV or JSONL file: the library side of ``imgsent classify``.

:func:`plan_classify` does all that needs no model (inputs, format, output policy, resume state,
one scan); :func:`run_classify` writes the predictor's batches; :func:`classify_files` does both.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from imgsent.errors import InputNotFoundError
from imgsent.options import PredictOptions
from imgsent.outputs import OutputFormat, Prediction, ResultWriter, check_writable, infer_format
from imgsent.results import RunRecord, sidecar_path, write_record
from imgsent.resume import OutputMode, ResumeState, check_mode, check_record, path_key, read_resume_state
from imgsent.shard import Shard, iter_shard_files
from imgsent.torn_lines import cut_torn_line

if TYPE_CHECKING:
    from imgsent.predictor import Predictor

_GLOB_CHARS = frozenset("*?[")


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


def expand_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Check that every input exists, expanding glob patterns (``*``, ``?``, ``[...]``, ``**``).

    Patterns are expanded here too because a quoted pattern, or a shell that does not expand
    it (Windows), passes it through literally. A path that exists is never treated as a pattern.

    Args:
        paths: Files, folders and glob patterns.

    Returns:
        Existing paths, in the order given; each pattern's matches sorted.

    Raises:
        InputNotFoundError: Some paths do not exist or patterns match nothing; the message lists them.

    Example:
        >>> expand_inputs(["examples/images/co*.jpg"])
        ['examples/images/coffee_cup.jpg']
    """
    found: list[str] = []
    missing: list[str] = []
    for path in paths:
        text = os.fspath(path)
        if os.path.lexists(text):
            found.append(text)
        elif _GLOB_CHARS & set(text) and (matches := sorted(glob.glob(os.path.expanduser(text), recursive=True))):
            found.extend(matches)
        else:
            missing.append(text)
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputNotFoundError(
            f"No such file or folder: {shown}. Check the spelling; glob patterns such as "
            "'photos/*.jpg' must match at least one file."
        )
    return found


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
    return ClassifyPlan(inputs, files, None if output is None else Path(output), chosen, mode, shard, skipped,
                        subfolders, existing)


def run_record(predictor: Predictor, fmt: OutputFormat, *, binary: bool, min_confidence: float = 0.0) -> RunRecord:
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
    )


def check_setup(predictor: Predictor, plan: ClassifyPlan, *, binary: bool, min_confidence: float, force: bool) -> RunRecord:
    """This run's record, checked against the plan's output (see :func:`run_classify`); changes nothing."""
    record = run_record(predictor, plan.format, binary=binary, min_confidence=min_confidence)
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
            engine, protocol or ``min_confidence``.
        on_progress: Called with a :class:`ClassifyProgress` once before the first batch and
            after each written batch.

    Returns:
        A :class:`ClassifySummary`.

    Raises:
        ResumeMismatchError: Resuming an output made with another setup (without ``force``);
            the file is left untouched.
        OutputExistsError: ``plan.mode`` is ``"new"`` and the output gained rows since the plan.
    """
    options = PredictOptions(batch_size=batch_size, workers=workers, binary=binary, min_confidence=min_confidence)
    record = check_setup(predictor, plan, binary=binary, min_confidence=options.min_confidence, force=force)
    summary = ClassifySummary(skipped=plan.skipped, resumed_rows=plan.existing.rows)
    stream, new_file = _open_output(plan, record, summary)
    try:
        writer = ResultWriter(stream, plan.format, write_header=new_file)
        start = time.perf_counter()
        total = len(plan.files)
        if on_progress is not None:
            on_progress(ClassifyProgress(0, total, 0.0))
        done = 0
        for predictions in predictor.iter_predict_batches(plan.files, options=options):
            writer.write(predictions)
            _tally(summary, predictions)
            done += len(predictions)
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
            model, revision, dtype, engine, protocol or ``min_confidence``.
        batch_size: Images per forward pass.
        workers: Decoding processes (``None``: automatic).
        binary: Drop neutral (the paper's protocol).
        min_confidence: Label predictions less confident than this ``"uncertain"`` (counted in
            ``summary.counts["uncertain"]``).
        shard: Only the files of this :class:`~imgsent.shard.Shard` (by a hash of their path
            relative to the folder given); ``None`` for all. Works with resume.
        on_progress: Called with a :class:`ClassifyProgress` after each written batch.

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
                        min_confidence=min_confidence, force=force, on_progress=on_progress)


def _subfolders(path: str) -> int:
    with os.scandir(path) as entries:
        return sum(1 for entry in entries if entry.is_dir())


def _tally(summary: ClassifySummary, predictions: list[Prediction]) -> None:
    for prediction in predictions:
        if prediction.ok:
            summary.counts[prediction.label or ""] += 1
        else:
            summary.errors += 1
