from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from imgsent.distill.labels import LabeledPost
from imgsent.distill.select import Thresholds, balanced_class_weights, select_samples, write_selection
from imgsent.errors import InvalidConfigError


def _rows() -> list[LabeledPost]:
    rows = []
    # 30 confident positive (2 images each), 20 confident neutral, 10 confident negative at 0.75
    for i in range(30):
        rows.append(LabeledPost(f"pos{i:02d}", (f"pos{i}a.jpg", f"pos{i}b.jpg"), (0.02, 0.03, 0.95)))
    for i in range(20):
        rows.append(LabeledPost(f"neu{i:02d}", (f"neu{i}.jpg",), (0.04, 0.92, 0.04)))
    for i in range(10):
        rows.append(LabeledPost(f"neg{i:02d}", (f"neg{i}.jpg",), (0.75, 0.15, 0.10)))
    # not confident enough: positive at 0.85, neutral at 0.8, negative at 0.6
    rows.append(LabeledPost("weak-pos", ("wp.jpg",), (0.05, 0.10, 0.85)))
    rows.append(LabeledPost("weak-neu", ("wn.jpg",), (0.10, 0.80, 0.10)))
    rows.append(LabeledPost("weak-neg", ("wg.jpg",), (0.60, 0.30, 0.10)))
    rows.append(LabeledPost("no-image", (), (0.0, 0.0, 1.0)))
    return rows


def test_thresholds_split_and_weights() -> None:
    sel = select_samples(_rows(), val_fraction=0.1, seed=3)
    assert sel.counts["input"]["posts"] == {"negative": 11, "neutral": 21, "positive": 31}
    assert sel.counts["confident"]["posts"] == {"negative": 10, "neutral": 20, "positive": 30}
    assert sel.counts["confident"]["images"] == {"negative": 10, "neutral": 20, "positive": 60}
    assert sel.counts["val"]["posts"] == {"negative": 1, "neutral": 2, "positive": 3}
    assert sel.counts["train"]["images"] == {"negative": 9, "neutral": 18, "positive": 54}
    # both images of a post stay in the same split
    val_posts = {s.post_id for s in sel.val}
    assert not val_posts & {s.post_id for s in sel.train}
    assert all(s.split == "val" for s in sel.val) and all(s.split == "train" for s in sel.train)
    n = 81
    assert sel.class_weights == pytest.approx((n / (3 * 9), n / (3 * 18), n / (3 * 54)))
    sample = next(s for s in sel.train if s.label == 0)
    assert sample.label == 0 and sample.probs == (0.75, 0.15, 0.10)
    assert not sel.warnings


def test_deterministic_and_order_independent() -> None:
    rows = _rows()
    a = select_samples(rows, seed=7)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    b = select_samples(shuffled, seed=7)
    assert a.train == b.train and a.val == b.val
    c = select_samples(rows, seed=8)
    assert {s.post_id for s in c.val} != {s.post_id for s in a.val}


def test_balance_and_custom_thresholds() -> None:
    sel = select_samples(_rows(), balance=True, val_fraction=0.2, seed=0)
    assert sel.counts["balanced"]["posts"] == {"negative": 10, "neutral": 10, "positive": 10}
    assert sel.counts["val"]["posts"] == {"negative": 2, "neutral": 2, "positive": 2}
    loose = select_samples(_rows(), thresholds=Thresholds(0.5, 0.5, 0.5))
    assert loose.counts["confident"]["posts"] == {"negative": 11, "neutral": 21, "positive": 31}
    with pytest.raises(InvalidConfigError, match="threshold for neutral must be a number in \\[0, 1\\], got 1.5"):
        Thresholds(neutral=1.5)
    with pytest.raises(InvalidConfigError, match="val_fraction must be in \\[0, 1\\), got 1.0"):
        select_samples([], val_fraction=1.0)


def test_empty_class_warns() -> None:
    rows = [LabeledPost(f"p{i}", (f"{i}.jpg",), (0.0, 0.05, 0.95)) for i in range(5)]
    sel = select_samples(rows, balance=True, val_fraction=0.0)
    assert sel.class_weights == pytest.approx((0.0, 0.0, 5 / (3 * 5)))
    assert len(sel.train) == 5 and len(sel.warnings) == 3


def test_balanced_class_weights() -> None:
    assert balanced_class_weights([0, 1, 2, 2]) == pytest.approx((4 / 3, 4 / 3, 2 / 3))
    assert balanced_class_weights([]) == (0.0, 0.0, 0.0)


def test_write_selection(tmp_path: Path) -> None:
    sel = select_samples(_rows(), seed=0)
    out = write_selection(sel, tmp_path / "sel", teacher={"id": "vader", "revision": "x"})
    train = [json.loads(line) for line in (out / "train.jsonl").read_text(encoding="utf-8").split("\n") if line]
    assert len(train) == len(sel.train)
    assert set(train[0]) == {"image", "post_id", "label", "label_id", "probs"}
    assert train[0]["label"] == ["negative", "neutral", "positive"][train[0]["label_id"]]
    summary = json.loads((out / "selection.json").read_text(encoding="utf-8"))
    assert summary["teacher"] == {"id": "vader", "revision": "x"}
    assert summary["thresholds"] == {"negative": 0.7, "neutral": 0.9, "positive": 0.9}
    assert summary["counts"]["train"] == sel.counts["train"]
    assert summary["class_weights"] == pytest.approx(list(sel.class_weights))
