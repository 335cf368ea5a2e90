"""TensorFlow side of the paper-model parity check (development only; needs TensorFlow).

Runs the authors' own pipeline on a folder of photos with a Keras ``.h5`` student:
``tf.image.decode_image(channels=3, expand_animations=False)``, ``tf.image.resize`` (bilinear,
no antialias) and the model, and writes the probabilities and the resized tensors to ``--out``.
The resized tensors are also written for ``decode_jpeg(dct_method="INTEGER_ACCURATE")``,
which separates the JPEG decoder from the rest of the pipeline.
``benchmarks/paper_parity.py`` compares them with imgsent.

    tfvenv/bin/python benchmarks/paper_parity_tf.py /tmp/ViT_B32.h5 ../shared/data/twitter1-dev/images --out /tmp/tf
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_addons as tfa
from vit_keras import layers as vit_layers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("h5", type=Path)
    parser.add_argument("images", type=Path)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, help="only the first N files (sorted by name)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    custom = {name: getattr(vit_layers, name) for name in ("ClassToken", "AddPositionEmbs", "TransformerBlock",
                                                          "MultiHeadSelfAttention")}
    model = tf.keras.models.load_model(args.h5, compile=False, custom_objects={**custom, "gelu": tfa.activations.gelu})
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[: args.limit]
    default = np.zeros((len(files), args.size, args.size, 3), np.float32)
    accurate = np.zeros_like(default)
    for i, path in enumerate(files):
        data = tf.io.read_file(str(path))
        default[i] = tf.image.resize(tf.image.decode_image(data, channels=3, expand_animations=False), (args.size, args.size))
        exact = tf.image.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE") if tf.io.is_jpeg(data) else \
            tf.image.decode_image(data, channels=3, expand_animations=False)
        accurate[i] = tf.image.resize(exact, (args.size, args.size))
    probs = np.concatenate([model(default[i : i + 32], training=False).numpy() for i in range(0, len(files), 32)])
    probs_acc = np.concatenate([model(accurate[i : i + 32], training=False).numpy() for i in range(0, len(files), 32)])
    np.save(args.out / "resized_default.npy", default)
    np.save(args.out / "resized_accurate.npy", accurate)
    np.save(args.out / "probs_default.npy", probs)
    np.save(args.out / "probs_accurate.npy", probs_acc)
    (args.out / "files.json").write_text(json.dumps([p.name for p in files]))


if __name__ == "__main__":
    main()
