"""Shared fixtures: tiny random-weight models saved as real model folders, and small real images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("IMGSENT_SHARED_DATA", REPO.parent / "shared" / "data"))

TINY_VIT = ArchitectureConfig(
    "vit_b16",
    {"image_size": 32, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64},
)


def tiny_config(**provenance: object) -> ModelConfig:
    """A ViT-B/16-shaped model shrunk to a few thousand weights, fed 32 px images."""
    return ModelConfig(TINY_VIT, PreprocessConfig(image_size=32), provenance=dict(provenance))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved random-weight tiny model folder (config.json + model.safetensors)."""
    import torch

    from imgsent.models.sentiment import SentimentModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-model")
    SentimentModel(tiny_config(note="random weights for tests")).save_pretrained(folder)
    return folder


def make_photo(path: Path, *, size: tuple[int, int] = (64, 48), seed: int = 0, fmt: str | None = None) -> Path:
    """Write a small noisy RGB image."""
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(array).save(path, format=fmt)
    return path


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """A folder with six small valid images in several formats."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, name in enumerate(["a.jpg", "b.png", "c.webp", "d.bmp", "e.tiff", "f.JPG"]):
        make_photo(folder / name, seed=i, size=(40 + i * 7, 30 + i * 5))
    return folder


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Twenty small images in two levels, plus one unreadable file."""
    root = tmp_path / "photos"
    (root / "2026").mkdir(parents=True)
    for i in range(12):
        make_photo(root / f"img{i:02d}.png", seed=i, size=(24 + i, 20))
    for i in range(8):
        make_photo(root / "2026" / f"x{i}.jpg", seed=100 + i, size=(30, 22 + i))
    (root / "broken.jpg").write_bytes(b"not an image")
    return root


def many_photos(folder: Path, count: int = 300) -> Path:
    """A new folder of ``count`` 64 x 64 PNGs, enough for a kill or an interrupt to land mid-run."""
    folder.mkdir()
    for i in range(count):
        make_photo(folder / f"{i:04d}.png", seed=i, size=(64, 64))
    return folder


def classify_until_rows(model_dir: Path, folder: Path, out: Path, *, workers: int, rows: int = 20, **popen: object):
    """Start ``imgsent classify FOLDER -o OUT`` in a subprocess and return it, with its command, once OUT holds ``rows`` lines.

    For tests that interrupt or kill a run mid-way; ``popen`` goes to :class:`subprocess.Popen`.
    """
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "imgsent", "classify", str(folder), "-o", str(out), "-m", str(model_dir),
           "--device", "cpu", "-b", "4", "-w", str(workers)]
    proc = subprocess.Popen(cmd, **popen)  # type: ignore[call-overload]
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < rows):
        time.sleep(0.05)
    return proc, cmd


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file, as dicts keyed by its header."""
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def classify_cli(model_dir: Path, *args: object):
    """Run ``imgsent classify ARGS`` in-process with ``model_dir`` on the CPU, decoding in the main process."""
    from typer.testing import CliRunner

    from imgsent.cli.app import app

    return CliRunner().invoke(app, ["classify", *map(str, args), "-m", str(model_dir), "--device", "cpu", "-w", "0"])


def shared_data_or_skip(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (set IMGSENT_SHARED_DATA to its folder)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _engine_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep ONNX exports made by tests out of the user's cache."""
    os.environ["IMGSENT_CACHE"] = str(tmp_path_factory.mktemp("imgsent-cache"))
