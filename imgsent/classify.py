"""Classify files into a CSV or JSONL file: the library side of ``imgsent classify``."""

from __future__ import annotations

import glob
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from imgsent.errors import InputNotFoundError
from imgsent.outputs import OutputFormat, Prediction, ResultWriter, check_min_confidence, output_columns
from imgsent.resume import RunRecord, check_record, path_key, read_resume_state, sidecar_path, write_record
from imgsent.scan import has_video_extension, iter_image_files
from imgsent.shard import Shard, iter_shard_files
from imgsent.torn_lines import cut_torn_line
from imgsent.video import DEFAULT_FRAMES, may_hold_media
from imgsent.video_outputs import FramePrediction
from imgsent.video_predict import iter_media_batches

if TYPE_CHECKING:
    from imgsent.predictor import Predictor

@dataclass
class ClassifySummary:
    """What a classify run did.

    Attributes:
        counts: Number of images per predicted label (``"uncertain"`` included).
        errors: Number of files that produced an error row.
        skipped: Files skipped because ``resume`` found them in the output already.
        seconds: Wall time of the run.
        resumed_rows: Rows the output held before a resumed run (0 without resume).

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

    @property
    def classified(self) -> int:
        """Images that got a label."""
        return sum(self.counts.values())

    @property
    def images_per_second(self) -> float:
        """Throughput over classified and failed files."""
        return (self.classified + self.errors) / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[int, int | None], None]
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputCount:
    """What the inputs of a run hold, counted before anything is loaded.

    Attributes:
        total: Image files to classify (files already in a resumed output excluded).
        done: Image files skipped because a resumed output holds them already.
        subfolders: Sub-folders that were not entered (``recursive=False``).
        videos: Of ``total``, files with a video extension (classified from sampled frames).
    """

    total: int
    done: int = 0
    subfolders: int = 0
    videos: int = 0


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


def count_images(
    paths: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    done: frozenset[str] = frozenset(),
    shard: Shard | None = None,
) -> InputCount:
    """Count the image files a run will see, with the same scan the run uses (names only, no decoding).

    Args:
        paths: Files and folders, e.g. from :func:`expand_inputs`.
        recursive: Descend into sub-folders.
        done: Normalised paths already in a resumed output (:attr:`imgsent.resume.ResumeState.done`).
        shard: Count only this part of the input (see :func:`classify_files`).

    Returns:
        An :class:`InputCount`.

    Example:
        >>> count_images(["examples/images"])
        InputCount(total=6, done=0, subfolders=0, videos=0)
    """
    cwd = os.getcwd()
    total = skipped = videos = 0
    for path in iter_shard_files(paths, shard, recursive=recursive):
        if done and path_key(path, cwd) in done:
            skipped += 1
        else:
            total += 1
            videos += has_video_extension(path)
    subfolders = 0
    if not recursive:
        for path in paths:
            if os.path.isdir(path):
                with os.scandir(path) as entries:
                    subfolders += sum(1 for entry in entries if entry.is_dir())
    return InputCount(total, skipped, subfolders, videos)


def run_record(predictor: Predictor, fmt: OutputFormat, *, binary: bool) -> RunRecord:
    """The :class:`~imgsent.resume.RunRecord` of a run with this predictor."""
    import imgsent

    return RunRecord(
        format=fmt,
        model=predictor.name,
        revision=predictor.revision,
        dtype=str(predictor.dtype).removeprefix("torch."),
        binary=binary,
        cwd=os.getcwd(),
        imgsent_version=imgsent.__version__,
    )


def classify_files(
    predictor: Predictor,
    paths: Iterable[str | os.PathLike[str]],
    *,
    output: str | os.PathLike[str] | None = None,
    fmt: OutputFormat = "csv",
    recursive: bool = False,
    resume: bool = False,
    force: bool = False,
    batch_size: int = 32,
    workers: int | None = None,
    binary: bool = False,
    total: int | None = None,
    min_confidence: float = 0.0,
    shard: Shard | None = None,
    on_progress: ProgressCallback | None = None,
    frames: int = DEFAULT_FRAMES,
    frame_rows: bool = False,
) -> ClassifySummary:
    """Classify every image file under ``paths`` and write one row per file as it goes.

    Rows are appended batch by batch and flushed to disk, so a crash loses at most the batch
    in flight. A file output gets a sidecar ``<output>.imgsent.json`` recording the model,
    revision, dtype and protocol (see :mod:`imgsent.resume`). With ``resume``, paths already
    in ``output`` are skipped (matched after normalisation, so ``./a.jpg`` and its absolute
    path are the same file) and a torn last row is repaired first.

    Args:
        predictor: A loaded :class:`~imgsent.Predictor`.
        paths: Files and folders.
        output: Output file; ``None`` writes to stdout.
        fmt: ``"csv"`` or ``"jsonl"``.
        recursive: Descend into sub-folders.
        resume: Skip paths already present in ``output`` and append the rest.
        force: With ``resume``, append even when the output was made with another model,
            revision, dtype or protocol.
        batch_size: Images per forward pass.
        workers: Decoding processes (``None``: automatic).
        binary: Drop neutral (the paper's protocol).
        total: Files this run will classify, when the caller counted them (:func:`count_images`);
            progress then has a total from the start.
        on_progress: Called after each written batch with (files done, total), where total is
            ``None`` until known.
        min_confidence: Label predictions less confident than this ``"uncertain"`` (counted in
            ``summary.counts["uncertain"]``).
        shard: Only the files of this :class:`~imgsent.shard.Shard` (by a hash of their path
            relative to the folder given); ``None`` for all. Works with ``resume``.
        frames: Frames sampled uniformly over each video or animated GIF, WebP or PNG; its row
            holds their mean probabilities and, in the ``frames`` column, how many were
            classified (see :mod:`imgsent.video_predict`). The column is there when an input
            file is named like a video, a GIF or an APNG (:func:`imgsent.video.may_hold_media`);
            without it, an animated PNG or WebP still gets its mean, but not its count. Default 8.
        frame_rows: Also write one row per sampled frame, path ``<file>#t=<seconds>``, with a
            ``time`` column; a resumed run never writes a frame row twice.

    Returns:
        A :class:`ClassifySummary`.

    Raises:
        ResumeMismatchError: ``resume`` onto a file in another format, or made with another
            model, revision, dtype or protocol (without ``force``). The file is left untouched.

    Example:
        >>> from imgsent import Predictor
        >>> summary = classify_files(Predictor.from_pretrained(), ["examples/images", "missing.jpg"], output="out.csv")
        >>> summary.classified, summary.errors
        (6, 1)
    """
    start = time.perf_counter()
    check_min_confidence(min_confidence)
    summary = ClassifySummary()
    done: frozenset[str] = frozenset()
    record = run_record(predictor, fmt, binary=binary)
    if output is not None and resume:
        state = read_resume_state(output, fmt)
        check_record(state.record, record, output=output, force=force)
        done, summary.resumed_rows = state.done, state.rows
    paths = list(paths)  # every shard gets the same columns: they are chosen from all the inputs
    scanned = _CountingScan(iter_shard_files(paths, shard, recursive=recursive), done, summary)
    columns = output_columns(frames=frame_rows or may_hold_media(iter_image_files(paths, recursive=recursive)), time=frame_rows)
    stream: TextIO
    if output is None:
        stream, close = sys.stdout, False
        new_file = True
    else:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        new_file = not Path(output).exists() or Path(output).stat().st_size == 0
        if not resume and not new_file:
            Path(output).unlink()
            new_file = True
        if not new_file:
            cut_torn_line(output, fsync=True)  # only complete rows are trusted; never append to a fragment
            columns = _csv_header(output) if fmt == "csv" else columns  # rows must fit the header written
        if new_file or not sidecar_path(output).exists():  # files from before records existed
            write_record(output, record)
        # surrogateescape keeps file names that are not valid UTF-8 byte-exact
        stream, close = open(output, "a", encoding="utf-8", newline="", errors="surrogateescape"), True
    try:
        writer = ResultWriter(stream, fmt, write_header=new_file, columns=columns)
        processed = 0
        if on_progress is not None:
            on_progress(0, total)
        cwd = os.getcwd()
        for predictions in iter_media_batches(predictor, scanned, frames=frames, frame_rows=frame_rows,
                                              batch_size=batch_size, workers=workers, binary=binary,
                                              min_confidence=min_confidence):
            if done:  # frame rows a killed run wrote before its file's row
                predictions = [p for p in predictions if path_key(p.source, cwd) not in done]
            writer.write(predictions)
            _tally(summary, predictions)
            processed += sum(not isinstance(p, FramePrediction) for p in predictions)
            if on_progress is not None:
                on_progress(processed, total if total is not None else scanned.total)
    finally:
        if close:
            stream.close()
    summary.seconds = time.perf_counter() - start
    return summary


class _CountingScan:
    """Wraps the folder scan: skips done paths and learns the total once the scan ends."""

    def __init__(self, files: Iterator[str], done: frozenset[str], summary: ClassifySummary) -> None:
        self._files = files
        self._done = done
        self._summary = summary
        self.total: int | None = None

    def __iter__(self) -> Iterator[str]:
        count = 0
        cwd = os.getcwd()
        for path in self._files:
            if self._done and path_key(path, cwd) in self._done:
                self._summary.skipped += 1
                continue
            count += 1
            yield path
        self.total = count


def _csv_header(output: str | os.PathLike[str]) -> tuple[str, ...]:
    """The columns named by the header of an existing CSV output."""
    import csv

    with open(output, encoding="utf-8", newline="", errors="surrogateescape") as handle:
        return tuple(next(csv.reader(handle), ()))


def _tally(summary: ClassifySummary, predictions: list[Prediction]) -> None:
    for prediction in predictions:
        if isinstance(prediction, FramePrediction):
            continue
        if prediction.ok:
            summary.counts[prediction.label or ""] += 1
        else:
            summary.errors += 1
