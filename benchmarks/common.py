"""Shared pieces of the benchmark harness: data, model folders, statistics and memory sampling."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("IMGSENT_SHARED_DATA", REPO.parent / "shared" / "data"))
BUNDLED_DEFAULT = REPO / "imgsent" / "weights" / "default"


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages (zeros where the platform has none)."""
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def cpu_flags() -> set[str]:
    """CPU feature flags from /proc/cpuinfo (empty off Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_fast_bf16() -> bool:
    """Whether the CPU has native bf16 dot products (AVX512-BF16 or AMX-BF16)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def machine_info() -> dict[str, Any]:
    """A description of the machine and the software versions, for the results file."""
    import PIL
    import torch
    import torchvision
    import transformers

    model = platform.processor()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name")), model)
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu": model,
        "cores": cores(),
        "fast_bf16": cpu_has_fast_bf16(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "transformers": transformers.__version__,
        "pillow": PIL.__version__,
        "load_average_start": load_average(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


# ---------------------------------------------------------------- data


def _make_one(args: tuple[str, int, int, int]) -> None:
    """Write one photo-like JPEG: a smooth random field with fine grain, quality 90."""
    import numpy as np
    from PIL import Image

    path, width, height, seed = args
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((width, height), Image.BICUBIC)
    grain = rng.normal(0.0, 6.0, (height, width, 3))
    pixels = np.clip(np.asarray(base, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=90)


def make_jpegs(folder: Path, count: int, *, size: tuple[int, int] = (1024, 768)) -> Path:
    """Generate ``count`` JPEGs of ``size`` in ``folder`` once; later calls reuse them."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f".complete-{count}-{size[0]}x{size[1]}"
    if marker.exists():
        return folder
    jobs = [(str(folder / f"img{i:06d}.jpg"), size[0], size[1], i) for i in range(count)]
    with get_context("fork" if sys.platform.startswith("linux") else "spawn").Pool(cores()) as pool:
        pool.map(_make_one, jobs, chunksize=16)
    marker.touch()
    return folder


def repeat_folder(source: Path, folder: Path, total: int) -> Path:
    """A folder of ``total`` hard links cycling over the JPEGs of ``source`` (no extra disk)."""
    files = sorted(source.glob("*.jpg"))
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f".complete-{total}"
    if marker.exists():
        return folder
    for i in range(total):
        target = folder / f"r{i:07d}.jpg"
        if not target.exists():
            try:
                os.link(files[i % len(files)], target)
            except OSError:  # file systems without hard links
                os.symlink(files[i % len(files)], target)
    marker.touch()
    return folder


def jpeg_paths(folder: Path, limit: int | None = None) -> list[str]:
    """Sorted JPEG paths in ``folder``, at most ``limit``."""
    paths = sorted(str(p) for p in folder.glob("*.jpg"))
    return paths[:limit] if limit is not None else paths


def shared_images() -> Path | None:
    """The real photos under ../shared/data, when present."""
    folder = SHARED_DATA / "twitter1-dev" / "images"
    return folder if folder.is_dir() and any(folder.glob("*.jpg")) else None


# ---------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSpec:
    """A model the harness benchmarks: a name, its architecture and its input size."""

    name: str
    arch: str
    arch_args: dict[str, Any] = field(default_factory=dict)
    image_size: int = 224


DEFAULT = ModelSpec("default (EfficientNet-Lite0 224)", "efficientnet_lite0")
VIT_B16 = ModelSpec("ViT-B/16 224", "vit_b16", {"image_size": 224})
TINY = ModelSpec(
    "tiny ViT 32",
    "vit_b16",
    {"image_size": 32, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64},
    32,
)


def model_folder(spec: ModelSpec, workdir: Path) -> Path:
    """A model folder for ``spec``: the bundled default when present, else random weights saved once."""
    if spec is DEFAULT and (BUNDLED_DEFAULT / "model.safetensors").is_file():
        return BUNDLED_DEFAULT
    import torch

    from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
    from imgsent.models.sentiment import SentimentModel

    slug = "".join(c if c.isalnum() else "-" for c in spec.name.lower())
    folder = workdir / "models" / slug
    if not (folder / "model.safetensors").is_file():
        torch.manual_seed(0)
        config = ModelConfig(
            ArchitectureConfig(spec.arch, dict(spec.arch_args)),
            PreprocessConfig(image_size=spec.image_size),
            provenance={"note": "random weights for benchmarks"},
        )
        SentimentModel(config).save_pretrained(folder)
    return folder


def is_bundled(folder: Path) -> bool:
    """Whether ``folder`` is the model shipped in the package."""
    return folder.resolve() == BUNDLED_DEFAULT.resolve()


# ---------------------------------------------------------------- statistics


@dataclass
class Summary:
    """Median and spread of repeated measurements."""

    median: float
    low: float
    high: float
    values: list[float]

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        vals = [float(v) for v in values]
        return cls(statistics.median(vals), min(vals), max(vals), vals)

    def text(self, digits: int = 1) -> str:
        """``median (low-high)``, or just the value for one repeat."""
        if len(self.values) == 1:
            return f"{self.median:.{digits}f}"
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}–{self.high:.{digits}f})"


def ratio(numerators: Sequence[float], denominators: Sequence[float]) -> Summary:
    """Ratios of paired repeats (repeat i over repeat i), so shared noise cancels as far as it can."""
    pairs = list(zip(numerators, denominators))
    return Summary.of([a / b for a, b in pairs if b > 0] or [0.0])


def timed(fn: Callable[[], int], *, min_seconds: float = 0.0) -> float:
    """Run ``fn`` (which returns the number of images it handled) until ``min_seconds``; img/s."""
    done, start = 0, time.perf_counter()
    while True:
        done += fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


# ---------------------------------------------------------------- memory


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            out.extend(int(c) for c in text.split())
    except OSError:
        pass
    return out


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes summed over ``pid`` and all its descendants.

    PSS shares copy-on-write pages between forked workers fairly, so its sum is the real
    footprint of the tree; the RSS sum counts shared pages once per process.
    """
    rss = pss = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
        except OSError:
            continue
        stack.extend(_children(current))
    return rss, pss


class MemorySampler:
    """Samples the memory of a process tree in a background thread.

    Example:
        >>> with MemorySampler(os.getpid()) as sampler:
        ...     work()
        >>> sampler.peak_pss_mb
        812.4
    """

    def __init__(self, pid: int, *, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []  # (seconds, rss MB, pss MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = tree_memory(self.pid)
            if rss:
                self.samples.append((time.perf_counter() - self._start, rss / 2**20, pss / 2**20))
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_rss_mb(self) -> float:
        return max((s[1] for s in self.samples), default=0.0)

    @property
    def peak_pss_mb(self) -> float:
        return max((s[2] for s in self.samples), default=0.0)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON (dataclasses converted)."""
    def default(obj: Any) -> Any:
        if hasattr(obj, "__dataclass_fields__"):
            return asdict(obj)
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(type(obj).__name__)

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=default) + "\n")
