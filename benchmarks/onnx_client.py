"""How closely the documented ONNX client (docs/how-to/onnx_client.py) reproduces imgsent.

Exports the bundled model, then compares, photo by photo, the client's probabilities with
``Predictor.predict`` in float32 on the CPU (what ``imgsent classify --dtype float32`` runs), on
real photos as they are, on large PNGs (real photos upscaled to 3000 px) and on EXIF-rotated JPEGs
(real photos saved with Orientation 3, 6 or 8). The plain Pillow path that the documentation
showed before (``convert("RGB").resize(...)``, no draft decoding, no reducing gap, no EXIF
orientation) is measured on the same files for comparison.

    python -m benchmarks.onnx_client --images 64
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

from benchmarks.common import REPO, SHARED_DATA


def _client() -> ModuleType:
    spec = importlib.util.spec_from_file_location("onnx_client", REPO / "docs" / "how-to" / "onnx_client.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _plain(session: object, meta: dict[str, str], paths: list[str]) -> np.ndarray:
    """The earlier documented path: full decode, one-step resize, stored orientation."""
    size = int(meta["imgsent.image_size"])
    mean, std = np.array(json.loads(meta["imgsent.mean"])), np.array(json.loads(meta["imgsent.std"]))
    rows = []
    for path in paths:
        image = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        rows.append(((np.asarray(image, np.float32) / 255 - mean) / std).transpose(2, 0, 1).astype(np.float32))
    return session.run(None, {"pixels": np.stack(rows)})[0]  # type: ignore[attr-defined]


def _variants(photos: list[Path], folder: Path, count: int) -> dict[str, list[str]]:
    large, rotated = [], []
    for i, path in enumerate(photos[:count]):
        image = Image.open(path).convert("RGB")
        big = image.resize((3000, max(1, 3000 * image.height // image.width)), Image.Resampling.BICUBIC)
        big.save(folder / f"large{i}.png")
        large.append(str(folder / f"large{i}.png"))
        exif = Image.Exif()
        exif[0x0112] = (3, 6, 8)[i % 3]
        image.save(folder / f"exif{i}.jpg", quality=92, exif=exif)
        rotated.append(str(folder / f"exif{i}.jpg"))
    return {"real JPEGs": [str(p) for p in photos], "large PNGs (3000 px)": large, "EXIF-rotated JPEGs": rotated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="Real photos to use (sorted by name).")
    parser.add_argument("--variants", type=int, default=16, help="Photos turned into large PNGs and EXIF-rotated JPEGs.")
    parser.add_argument("--folder", type=Path, default=SHARED_DATA / "twitter1-dev" / "images")
    args = parser.parse_args()

    from imgsent.engines.export import export_onnx
    from imgsent.models.sentiment import SentimentModel
    from imgsent.predictor import Predictor

    photos = sorted(args.folder.glob("*.jpg"))[: args.images]
    client = _client()
    predictor = Predictor.from_pretrained(device="cpu", dtype="float32")
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(SentimentModel.from_pretrained(), Path(tmp) / "model.onnx")
        session, meta = client.open_model(str(onnx_path))
        print(f"engine {predictor.backend}, float32, {len(photos)} photos from {args.folder}")
        print("| images | n | client max abs dp | client label flips | earlier recipe max abs dp | earlier flips |")
        print("|---|---|---|---|---|---|")
        for name, paths in _variants(photos, Path(tmp), args.variants).items():
            ours = np.array([[p.negative, p.neutral, p.positive] for p in predictor.predict(paths, workers=0)])
            theirs = np.array([[row[k] for k in ("negative", "neutral", "positive")]
                               for row in client.predict(session, meta, paths)])
            plain = _plain(session, meta, paths)
            flips = int((ours.argmax(1) != theirs.argmax(1)).sum())
            plain_flips = int((ours.argmax(1) != plain.argmax(1)).sum())
            print(f"| {name} | {len(paths)} | {np.abs(ours - theirs).max():.1e} | {flips} | "
                  f"{np.abs(ours - plain).max():.3f} | {plain_flips} |")


if __name__ == "__main__":
    main()
