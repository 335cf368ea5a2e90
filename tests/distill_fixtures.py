"""Helpers shared by the tests/test_distill_*.py modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The shared data folder, or skip the test with the reason."""
    env = os.environ.get("IMGSENT_SHARED_DATA")
    folder = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder} (set IMGSENT_SHARED_DATA to its folder)")
    return folder


def make_image(path: Path, color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (16, 12)) -> Path:
    """Write a small solid-colour JPEG (or PNG by suffix) and return its path."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path
