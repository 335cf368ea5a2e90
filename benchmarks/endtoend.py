"""End to end: ``imgsent classify`` on a folder, in a child process whose whole tree is measured."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, MemorySampler

_RATE = re.compile(r"([0-9.]+) images/s")


@dataclass(frozen=True)
class Variant:
    """A way to run ``imgsent classify``: the stock CLI, or the CLI with candidate core changes."""

    name: str
    workers: int | None = None
    threads: int | str | None = None
    dtype: str = "auto"
    channels_last: bool = False
    stock: bool = False

    def command(self, folder: Path, model: Path, output: Path, batch_size: int) -> list[str]:
        """The command line that runs this variant."""
        if self.stock:
            cmd = [sys.executable, "-m", "imgsent", "classify", str(folder), "-o", str(output), "--model", str(model),
                   "--overwrite", "--no-progress", "--batch-size", str(batch_size), "--device", "cpu", "--dtype", self.dtype]
            return cmd + ([] if self.workers is None else ["--workers", str(self.workers)])
        cmd = [sys.executable, "-m", "benchmarks.variant", str(folder), "-o", str(output), "--model", str(model),
               "--batch-size", str(batch_size), "--dtype", self.dtype]
        cmd += [] if self.workers is None else ["--workers", str(self.workers)]
        cmd += [] if self.threads is None else ["--threads", str(self.threads)]
        return cmd + (["--channels-last"] if self.channels_last else [])


STOCK = Variant("stock", stock=True)
TUNED = Variant("tuned: bf16 if native + channels-last + threads = cores - workers for light models", dtype="auto-bf16",
                channels_last=True, threads="split")


@dataclass
class RunResult:
    """One end-to-end run.

    Attributes:
        images: Files classified (rows written).
        images_per_second: Throughput the CLI reports (scan, decode, forward, write; no start-up).
        wall_images_per_second: Throughput over the whole process, start-up and model load included.
        peak_rss_mb: Peak of the RSS summed over the process tree (counts shared pages per process).
        peak_pss_mb: Peak of the PSS summed over the process tree (the real footprint).
        memory: (seconds, rss MB, pss MB) samples.
    """

    images: int
    images_per_second: float
    wall_images_per_second: float
    peak_rss_mb: float
    peak_pss_mb: float
    memory: list[tuple[float, float, float]] = field(default_factory=list)


def run_classify(
    variant: Variant, folder: Path, model: Path, *, batch_size: int = 32, interval: float = 0.25, keep_samples: bool = False
) -> RunResult:
    """Run one variant over ``folder`` and measure throughput and the memory of its process tree.

    Raises:
        RuntimeError: The command failed or did not write one row per file.
    """
    with tempfile.TemporaryDirectory(prefix="imgsent-bench-") as tmp:
        output = Path(tmp) / "out.csv"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        start = time.perf_counter()
        proc = subprocess.Popen(
            variant.command(folder, model, output, batch_size), cwd=REPO, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        with MemorySampler(proc.pid, interval=interval) as sampler:
            _, stderr = proc.communicate()
        wall = time.perf_counter() - start
        if proc.returncode not in (0, 3):
            raise RuntimeError(f"{variant.name} failed with exit code {proc.returncode}:\n{stderr[-2000:]}")
        with open(output, encoding="utf-8") as fh:
            rows = sum(1 for _ in fh) - 1
    match = _RATE.findall(stderr)
    if not match:
        raise RuntimeError(f"{variant.name}: no 'images/s' in its output:\n{stderr[-2000:]}")
    return RunResult(
        images=rows,
        images_per_second=float(match[-1]),
        wall_images_per_second=rows / wall,
        peak_rss_mb=sampler.peak_rss_mb,
        peak_pss_mb=sampler.peak_pss_mb,
        memory=sampler.samples if keep_samples else [],
    )


def memory_flatness(result: RunResult) -> dict[str, Any]:
    """Is memory flat over a long stream? Compare the start (after warm-up) with the end.

    The first 20% of the run (imports, model load, worker start, allocator warm-up) is skipped.
    ``growth_mb`` is the median PSS of the last 20% minus that of the 20-40% window;
    ``slope_mb_per_10k`` is a least-squares slope over the steady part, in MB per 10,000 images.
    Flat means growth under max(50 MB, 10% of the start).
    """
    samples = result.memory
    if len(samples) < 10:
        return {"flat": None, "reason": "too few samples"}
    end_time = samples[-1][0]
    steady = [s for s in samples if s[0] >= 0.2 * end_time]
    early = [s[2] for s in steady if s[0] < 0.4 * end_time] or [steady[0][2]]
    late = [s[2] for s in steady if s[0] >= 0.8 * end_time] or [steady[-1][2]]
    median = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    xs = [s[0] for s in steady]
    ys = [s[2] for s in steady]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs) or 1.0
    slope_per_s = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var
    rate = result.images / end_time if end_time > 0 else 0.0
    slope_per_10k = slope_per_s * 10_000 / rate if rate else 0.0
    growth = median(late) - median(early)
    return {
        "start_pss_mb": median(early),
        "end_pss_mb": median(late),
        "peak_pss_mb": result.peak_pss_mb,
        "peak_rss_mb": result.peak_rss_mb,
        "growth_mb": growth,
        "slope_mb_per_10k": slope_per_10k,
        "flat": abs(growth) < max(50.0, 0.10 * median(early)),
    }
