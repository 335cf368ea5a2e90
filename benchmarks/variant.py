"""``imgsent classify`` with candidate core changes applied from outside, for side-by-side runs.

Run as ``python -m benchmarks.variant FOLDER --model M [options]``. It does what the CLI does
(``Predictor.from_pretrained`` then ``classify_files``) and prints the same summary line, but:

* ``--channels-last`` puts every batch in channels-last layout (the torch engine keeps the
  model channels-last on CPU and CUDA);
* ``--dtype auto-bf16`` picks bfloat16 weights on CPUs with native bf16 (AVX512-BF16/AMX), else float32;
* ``--threads`` sets torch's intra-op threads in the main process (the compute side of the
  split between compute and the ``--workers`` decoding processes); ``--threads split`` gives
  torch the cores the decoding workers leave free (``cores - workers``, at least 1) for light
  models (under 20 M parameters), where decoding is a large share of the work, and leaves all
  cores to torch for heavy ones, whose decoding worker is mostly idle.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


LIGHT_MODEL_PARAMS = 20_000_000  # EfficientNet-Lite0 has 3.4 M, ViT-B/16 86 M


def tuned_predictor_class():  # noqa: ANN201 - builds the subclass lazily (no torch import at import time)
    """A Predictor subclass with channels-last on CPU as an option."""
    import torch

    from imgsent.data import DecodedBatch
    from imgsent.predictor import Predictor

    class TunedPredictor(Predictor):
        channels_last = False

        def enable_channels_last(self) -> None:
            self.channels_last = True  # the torch engine already keeps the CPU model channels-last

        def forward(self, batch: DecodedBatch) -> torch.Tensor:
            if self.channels_last and batch.pixels.ndim == 4:
                batch.pixels = batch.pixels.contiguous(memory_format=torch.channels_last)
            return super().forward(batch)

    return TunedPredictor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.variant")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--model", required=True)
    parser.add_argument("--output", "-o", required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", default=None, help="an int, or split (cores - workers)")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or auto-bf16")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from benchmarks.common import cores, cpu_has_fast_bf16
    from imgsent.classify import classify_files
    from imgsent.runtime import default_workers

    dtype = args.dtype
    if dtype == "auto-bf16":
        dtype = "bfloat16" if cpu_has_fast_bf16() else "float32"
    predictor = tuned_predictor_class().from_pretrained(args.model, device="cpu", dtype=dtype, backend="torch")
    if args.threads == "split":  # light models: decoding is a large share, so it gets its own cores
        workers = default_workers(torch.device("cpu")) if args.workers is None else args.workers
        if workers > 0 and sum(p.numel() for p in predictor.model.parameters()) < LIGHT_MODEL_PARAMS:
            torch.set_num_threads(max(1, cores() - workers))
    elif args.threads:
        torch.set_num_threads(int(args.threads))
    if args.channels_last:
        predictor.enable_channels_last()
    summary = classify_files(
        predictor, [Path(p) for p in args.paths], output=args.output, batch_size=args.batch_size, workers=args.workers
    )
    print(
        f"{summary.classified} classified, {summary.errors} errors; {summary.images_per_second:.1f} images/s",
        file=sys.stderr,
    )
    return 3 if summary.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
