"""Stream predictions over a folder of any size with constant memory, printing running counts.

Usage:
    python examples/iterate_large_folder.py /data/photos --every 10000
    python examples/iterate_large_folder.py examples/images --every 2

Paths come from a generator that walks the folder as predictions are consumed, so neither the
list of files nor the predictions are ever held in memory. Predictions arrive in input order.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from imgsent import Predictor
from imgsent.scan import has_image_extension

HERE = Path(__file__).resolve().parent


def walk_images(root: str) -> Iterator[str]:
    """Yield image paths under ``root`` lazily, folder by folder."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if has_image_extension(name):
                yield os.path.join(folder, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", default=str(HERE / "images"), help="folder to walk (default: examples/images)")
    parser.add_argument("--model", default=None, help="model name, folder or Hub repo id (default: the packaged model)")
    parser.add_argument("--every", type=int, default=1000, help="print counts every N images (default: 1000)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: automatic)")
    parser.add_argument("--binary", action="store_true", help="drop neutral (the paper's protocol)")
    args = parser.parse_args(argv)

    predictor = Predictor.from_pretrained(args.model)
    counts: Counter[str] = Counter()
    start = time.perf_counter()
    done = 0
    stream = predictor.iter_predict(walk_images(args.folder), batch_size=args.batch_size, workers=args.workers, binary=args.binary)
    for done, prediction in enumerate(stream, start=1):
        counts[prediction.label if prediction.ok else "error"] += 1
        if done % args.every == 0:
            rate = done / (time.perf_counter() - start)
            print(f"{done} images, {rate:.1f}/s: {dict(sorted(counts.items()))}", flush=True)
    print(f"done: {done} images: {dict(sorted(counts.items()))}")
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
