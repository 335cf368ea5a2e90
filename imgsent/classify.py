"""Classify files into a CSV or JSONL file: the library side of ``imgsent classify``."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from imgsent.outputs import OutputFormat, Prediction, ResultWriter, repair_and_read_done
from imgsent.predictor import Predictor
from imgsent.shard import Shard, iter_shard_files


@dataclass
class ClassifySummary:
    """What a classify run did.

    Attributes:
        counts: Number of images per predicted label.
        errors: Number of files that produced an error row.
        skipped: Files skipped because ``resume`` found them in the output already.
        seconds: Wall time of the run.

    Example:
        >>> summary = ClassifySummary(Counter(positive=3, negative=1), errors=1, seconds=2.0)
        >>> summary.classified, summary.images_per_second
        (4, 2.5)
    """

    counts: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def classified(self) -> int:
        """Images that got a label."""
        return sum(self.counts.values())

    @property
    def images_per_second(self) -> float:
        """Throughput over classified and failed files."""
        return (self.classified + self.errors) / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[int, int | None], None]


def classify_files(
    predictor: Predictor,
    paths: Iterable[str | os.PathLike[str]],
    *,
    output: str | os.PathLike[str] | None = None,
    fmt: OutputFormat = "csv",
    recursive: bool = False,
    resume: bool = False,
    batch_size: int = 32,
    workers: int | None = None,
    binary: bool = False,
    shard: Shard | None = None,
    on_progress: ProgressCallback | None = None,
) -> ClassifySummary:
    """Classify every image file under ``paths`` and write one row per file as it goes.

    Rows are appended batch by batch and flushed to disk, so a crash loses at most the batch
    in flight. With ``resume``, paths already in ``output`` are skipped and a torn last row
    is repaired first.

    Args:
        predictor: A loaded :class:`~imgsent.Predictor`.
        paths: Files and folders.
        output: Output file; ``None`` writes to stdout.
        fmt: ``"csv"`` or ``"jsonl"``.
        recursive: Descend into sub-folders.
        resume: Skip paths already present in ``output``.
        batch_size: Images per forward pass.
        workers: Decoding processes (``None``: automatic).
        binary: Drop neutral (the paper's protocol).
        shard: Only the files of this :class:`~imgsent.shard.Shard` (by a hash of their path
            relative to the folder given); ``None`` for all. Works with ``resume``.
        on_progress: Called with (files done, total or ``None`` while the scan runs).

    Returns:
        A :class:`ClassifySummary`.

    Example:
        >>> summary = classify_files(Predictor.from_pretrained(), ["photos/"], output="out.csv", recursive=True)
        >>> summary.classified, summary.errors
        (1520, 3)
    """
    start = time.perf_counter()
    summary = ClassifySummary()
    done: set[str] = set()
    if output is not None and resume:
        done = repair_and_read_done(output, fmt)
    scanned = _CountingScan(iter_shard_files(paths, shard, recursive=recursive), done, summary)
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
        # surrogateescape keeps file names that are not valid UTF-8 byte-exact
        stream, close = open(output, "a", encoding="utf-8", newline="", errors="surrogateescape"), True
    try:
        writer = ResultWriter(stream, fmt, write_header=new_file)
        processed = 0
        for batch in predictor.iter_batches(scanned, batch_size=batch_size, workers=workers):
            predictions = predictor.postprocess(batch, predictor.forward(batch), binary=binary)
            writer.write(predictions)
            _tally(summary, predictions)
            processed += len(predictions)
            if on_progress is not None:
                on_progress(processed, scanned.total)
    finally:
        if close:
            stream.close()
    summary.seconds = time.perf_counter() - start
    return summary


class _CountingScan:
    """Wraps the folder scan: skips done paths and learns the total once the scan ends."""

    def __init__(self, files: Iterator[str], done: set[str], summary: ClassifySummary) -> None:
        self._files = files
        self._done = done
        self._summary = summary
        self.total: int | None = None

    def __iter__(self) -> Iterator[str]:
        count = 0
        for path in self._files:
            if path in self._done:
                self._summary.skipped += 1
                continue
            count += 1
            yield path
        self.total = count


def _tally(summary: ClassifySummary, predictions: list[Prediction]) -> None:
    for prediction in predictions:
        if prediction.ok:
            summary.counts[prediction.label or ""] += 1
        else:
            summary.errors += 1
