"""Golden test: the bundled default model's float32 CPU probabilities on examples/images.

Any change to preprocessing (resize size or filter, mean/std, decoding) or to the shipped
weights moves these numbers beyond the tolerance. If the change is intended, regenerate the
golden file with ``python -m tests.golden`` and commit it with the change.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.golden import GOLDEN, LABELS, compute, example_images, sha256


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def current() -> dict[str, Any]:
    return compute()


def test_golden_file_covers_every_example_image_unchanged(golden: dict[str, Any]) -> None:
    images = {p.name: sha256(p) for p in example_images()}
    assert len(images) >= 5
    assert set(golden["images"]) == set(images), "examples/images changed: run python -m tests.golden"
    for name, row in golden["images"].items():
        assert row["sha256"] == images[name], f"{name} changed on disk: run python -m tests.golden"
    assert (golden["device"], golden["dtype"], golden["tolerance"]) == ("cpu", "float32", 1e-4)


def test_default_model_matches_golden_probabilities(golden: dict[str, Any], current: dict[str, Any]) -> None:
    tolerance = golden["tolerance"]
    worst = {
        name: max(abs(current["images"][name]["probabilities"][k] - row["probabilities"][k]) for k in LABELS)
        for name, row in golden["images"].items()
    }
    off = {name: diff for name, diff in worst.items() if diff > tolerance}
    weights = "" if current["weights_sha256"] == golden["weights_sha256"] else " (the shipped weights changed)"
    assert not off, (
        f"probabilities moved by more than {tolerance}{weights}: {off}. If this change is intended, "
        "run python -m tests.golden and commit tests/data/golden_default.json."
    )
    assert {n: r["label"] for n, r in current["images"].items()} == {n: r["label"] for n, r in golden["images"].items()}
