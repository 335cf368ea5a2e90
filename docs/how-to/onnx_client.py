"""Run an imgsent ONNX export with ONNX Runtime, Pillow and NumPy alone, reading only its metadata.

Usage: python onnx_client.py imgsent.onnx photo.jpg [more images...]
"""

from __future__ import annotations

import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def open_model(path: str) -> tuple[ort.InferenceSession, dict[str, str]]:
    """The ONNX Runtime session and the file's metadata keys."""
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session, session.get_modelmeta().custom_metadata_map


def decode(path: str, meta: dict[str, str]) -> Image.Image:
    """An image file -> RGB, step by step as the metadata says."""
    image = Image.open(path)  # imgsent.frame: the first frame of an animation
    draft_size = json.loads(meta["imgsent.jpeg_draft_size"])
    if json.loads(meta["imgsent.jpeg_draft"]) and image.format in ("JPEG", "MPO"):
        # DCT scaling by 1/2, 1/4 or 1/8 while both sides stay >= the (square) target.
        image.draft("RGB", tuple(draft_size))
    image.load()
    if json.loads(meta["imgsent.exif_orientation"]) == "apply":
        try:
            ImageOps.exif_transpose(image, in_place=True)
        except Exception:  # malformed EXIF: keep the stored orientation
            pass
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, tuple(json.loads(meta["imgsent.alpha_background"])))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode.startswith("I") or image.mode == "F":
        raise ValueError(f"{path}: high bit depth ({image.mode}); see imgsent.high_bit_depth")
    return image.convert("RGB")


def resize(image: Image.Image, meta: dict[str, str]) -> Image.Image:
    """RGB image -> the square network input size, by the model's resize mode."""
    if not json.loads(meta["imgsent.resize_antialias"]):
        raise ValueError("this model resizes without antialiasing (tf.image.resize); this client does not")
    size = int(meta["imgsent.image_size"])
    mode = meta["imgsent.resize_mode"]
    resample = FILTERS[meta["imgsent.interpolation"]]
    gap = json.loads(meta["imgsent.resize_reducing_gap"])
    width, height = image.size
    if mode == "squash":
        return image.resize((size, size), resample, reducing_gap=gap)
    scale = size / min(width, height) if mode == "crop" else size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    image = image.resize((new_w, new_h), resample, reducing_gap=gap)
    if mode == "crop":  # centred square
        left, top = (new_w - size) // 2, (new_h - size) // 2
        return image.crop((left, top, left + size, top + size))
    canvas = Image.new("RGB", (size, size), tuple(json.loads(meta["imgsent.letterbox_fill"])))
    canvas.paste(image, ((size - new_w) // 2, (size - new_h) // 2))
    return canvas


def to_input(image: Image.Image, meta: dict[str, str]) -> np.ndarray:
    """Resized RGB image (8-bit values) -> normalised float32 [3, S, S]."""
    mean = np.array(json.loads(meta["imgsent.mean"]), np.float32) * 255
    std = np.array(json.loads(meta["imgsent.std"]), np.float32) * 255
    return ((np.asarray(image, np.float32) - mean) / std).transpose(2, 0, 1)


def predict(session: ort.InferenceSession, meta: dict[str, str], paths: list[str]) -> list[dict[str, float]]:
    """Calibrated probabilities per image, keyed by label (the graph applies imgsent.temperature)."""
    batch = np.stack([to_input(resize(decode(p, meta), meta), meta) for p in paths])
    (probabilities,) = session.run(None, {"pixels": batch})
    labels = json.loads(meta["imgsent.labels"])
    return [dict(zip(labels, row.tolist())) for row in probabilities]


if __name__ == "__main__":
    session, meta = open_model(sys.argv[1])
    for path, probs in zip(sys.argv[2:], predict(session, meta, sys.argv[2:])):
        print(path, max(probs, key=probs.get), {k: round(v, 4) for k, v in probs.items()})
