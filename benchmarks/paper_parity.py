"""imgsent side of the paper-model parity check: compare with TensorFlow's own pipeline.

Run ``benchmarks/paper_parity_tf.py`` first (in an environment with TensorFlow), then
``imgsent classify`` on the converted model, then this script::

    imgsent convert keras /tmp/ViT_B32.h5 -o /tmp/conv_b32
    imgsent classify ../shared/data/twitter1-dev/images -m /tmp/conv_b32 -o /tmp/imgsent_b32.csv \\
        --dtype float32 --device cpu
    python -m benchmarks.paper_parity /tmp/conv_b32 ../shared/data/twitter1-dev/images \\
        --tf /tmp/tfpar --csv /tmp/imgsent_b32.csv

It prints (and writes to ``--json``) label agreement and max |Δp| between ``imgsent classify``
and TensorFlow, with TF's default JPEG decoder and with ``dct_method="INTEGER_ACCURATE"``, and how
far imgsent's input tensors (PIL decode, float bilinear resize) land from TF's.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from imgsent.config import ModelConfig
from imgsent.images import load_image
from imgsent.transforms import preprocess


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", type=Path)
    parser.add_argument("images", type=Path)
    parser.add_argument("--tf", type=Path, required=True, help="output folder of paper_parity_tf.py")
    parser.add_argument("--csv", type=Path, required=True, help="imgsent classify output for the same folder")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    files = json.loads((args.tf / "files.json").read_text())
    ours: dict[str, np.ndarray] = {}
    with args.csv.open(newline="") as fh:
        for row in csv.DictReader(fh):
            ours[Path(row["source"] if "source" in row else row["path"]).name] = np.array(
                [float(row["negative"]), float(row["neutral"]), float(row["positive"])]
            )
    probs = np.stack([ours[name] for name in files])
    result: dict[str, object] = {"images": len(files)}
    for decoder in ("default", "accurate"):
        tf_probs = np.load(args.tf / f"probs_{decoder}.npy")
        result[f"tf_{decoder}"] = {
            "label_agreement": float((tf_probs.argmax(1) == probs.argmax(1)).mean()),
            "disagreements": int((tf_probs.argmax(1) != probs.argmax(1)).sum()),
            "max_abs_dp": float(np.abs(tf_probs - probs).max()),
            "mean_abs_dp": float(np.abs(tf_probs - probs).mean()),
            "binary_agreement": float((tf_probs[:, [0, 2]].argmax(1) == probs[:, [0, 2]].argmax(1)).mean()),
        }
    cfg = ModelConfig.load(args.model).preprocess
    pixels = np.stack([preprocess(load_image(args.images / n), cfg).permute(1, 2, 0).numpy() for n in files])
    for decoder in ("default", "accurate"):
        tf_pixels = np.load(args.tf / f"resized_{decoder}.npy", mmap_mode="r")
        diff = np.abs(pixels - tf_pixels)
        per_image = diff.reshape(len(files), -1).max(1)
        result[f"pixels_vs_tf_{decoder}"] = {
            "max_abs": float(diff.max()),
            "mean_abs": float(diff.mean()),
            "images_within_1e-3": int((per_image < 1e-3).sum()),
            "median_image_max_abs": float(np.median(per_image)),
        }
    rotated = sum(Image.open(args.images / n).getexif().get(0x0112, 1) not in (1,) for n in files)
    result["exif_rotated_images"] = rotated
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
