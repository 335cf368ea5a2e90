"""The golden probabilities of the bundled default model on examples/images.

tests/test_golden.py checks the model against tests/data/golden_default.json. After a change
that is *meant* to move the model's outputs (new weights, new preprocessing), regenerate the
file from the repository root and commit it with the change that moved them::

    python -m tests.golden
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "examples" / "images"
GOLDEN = REPO / "tests" / "data" / "golden_default.json"
TOLERANCE = 1e-4
LABELS = ("negative", "neutral", "positive")


def example_images() -> list[Path]:
    """Every image file in examples/images, sorted by name."""
    return sorted(p for p in IMAGES.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})


def sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compute() -> dict[str, Any]:
    """Run the bundled model in float32 on the CPU over every example image."""
    import torch

    from imgsent.hub import resolve_model_dir
    from imgsent.predictor import Predictor

    torch.manual_seed(0)
    predictor = Predictor.from_pretrained(None, device="cpu", dtype="float32")
    images = example_images()
    predictions = predictor.predict([str(p) for p in images], batch_size=len(images), workers=0)
    weights = resolve_model_dir(None) / "model.safetensors"
    rows = {}
    for path, prediction in zip(images, predictions):
        if not prediction.ok:
            raise RuntimeError(f"{path.name} could not be classified: {prediction.error}")
        rows[path.name] = {
            "sha256": sha256(path),
            "label": prediction.label,
            "probabilities": {label: round(float(getattr(prediction, label)), 7) for label in LABELS},
        }
    return {
        "model": "default",
        "weights_sha256": sha256(weights),
        "device": "cpu",
        "dtype": "float32",
        "tolerance": TOLERANCE,
        "regenerate": "python -m tests.golden",
        "images": rows,
    }


def main() -> None:
    """Write tests/data/golden_default.json."""
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(compute(), indent=2) + "\n")
    print(f"wrote {GOLDEN.relative_to(REPO)}")


if __name__ == "__main__":
    main()
