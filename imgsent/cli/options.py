"""Option checks shared by the commands, run before anything is loaded, and the progress bar."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from imgsent.cli.common import err

DTYPES = ("auto", "float32", "bfloat16", "float16")
FORMATS = ("csv", "jsonl")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


BACKENDS = ("auto", "torch", "onnxruntime", "openvino")  # imgsent.engines.BACKENDS, without importing torch


def check_run_options(*, device: str, dtype: str, fmt: str | None = None, backend: str = "auto") -> None:
    """Reject bad ``--device``, ``--dtype``, ``--format`` and ``--backend`` values with exit code 2, before any loading.

    Raises:
        typer.BadParameter: A value is not valid here; the message lists the valid ones.
    """
    if not _DEVICE.match(device):
        raise typer.BadParameter(
            f"{device!r} is not a device. Use auto, cpu, cuda, cuda:N or mps.", param_hint="'--device'"
        )
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise typer.BadParameter(f"{device!r} was asked for, but CUDA is not available here. Use auto or cpu.",
                                     param_hint="'--device'")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise typer.BadParameter(f"{device!r}: this machine has {torch.cuda.device_count()} CUDA device(s).",
                                     param_hint="'--device'")
    if device == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise typer.BadParameter("'mps' was asked for, but it is not available here. Use auto or cpu.",
                                     param_hint="'--device'")
    if dtype not in DTYPES:
        raise typer.BadParameter(f"{dtype!r} is not a dtype. Use one of: {', '.join(DTYPES)}.", param_hint="'--dtype'")
    if fmt is not None and fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not a format. Use csv or jsonl.", param_hint="'--format'")
    if backend not in BACKENDS:
        raise typer.BadParameter(f"{backend!r} is not an engine. Use one of: {', '.join(BACKENDS)}.", param_hint="'--backend'")


class _RateColumn(ProgressColumn):
    """Images per second: the rate the command passes (``rate=``), else Rich's moving estimate."""

    def render(self, task: Task) -> Text:
        speed = task.fields.get("rate") or task.finished_speed or task.speed
        return Text("  ?  img/s" if speed is None else f"{speed:5.1f} img/s", style="progress.data.speed")


@contextmanager
def progress_bar(
    label: str, *, enabled: bool, total: int | None = None
) -> Iterator[Callable[..., None] | None]:
    """A Rich progress bar on stderr, ``n/N, %, img/s, elapsed, ETA``; yields the update callback.

    When the total is not known yet, the bar pulses and says so instead of showing ``n/?``.
    The callback takes ``(done, total)``, and optionally ``rate=`` images per second to show
    instead of Rich's estimate (so the bar and a command's summary agree). Yields ``None`` when disabled.
    """
    if not enabled:
        yield None
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _RateColumn(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
    task = progress.add_task(label if total is not None else f"{label} (total unknown until the scan ends)", total=total)

    def update(done: int, total: int | None, rate: float | None = None) -> None:
        description = label if total is not None else f"{label} (total unknown until the scan ends)"
        progress.update(task, completed=done, total=total, description=description, rate=rate)

    with progress:
        yield update
