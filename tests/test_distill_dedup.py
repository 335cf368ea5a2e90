from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from imgsent.distill.corpus import Post
from imgsent.distill.dedup import apply_dedup, deduplicate, find_exact_duplicates, find_near_duplicates
from imgsent.errors import EmbeddingError, InvalidConfigError
from tests.distill_fixtures import make_image


def _vectors(table: dict[str, list[float]]):
    """An embed function that looks each path's file name up in a table."""
    calls: list[int] = []

    def embed(paths: list[str]) -> torch.Tensor:
        calls.append(len(paths))
        return torch.tensor([table[Path(p).name] for p in paths], dtype=torch.float32)

    embed.calls = calls  # type: ignore[attr-defined]
    return embed


def test_exact_duplicates(tmp_path: Path) -> None:
    a = make_image(tmp_path / "a.png", (255, 0, 0))
    b = make_image(tmp_path / "b.png", (0, 255, 0))
    a2 = tmp_path / "a_copy.png"
    shutil.copy(a, a2)
    report = find_exact_duplicates([str(a), str(b), str(a2), str(tmp_path / "missing.png"), str(a)])
    assert report.kept == [str(a), str(b)]
    assert [(d.path, d.kept, d.kind, d.distance) for d in report.removed] == [(str(a2), str(a), "exact", 0.0)]
    assert list(report.unreadable) == [str(tmp_path / "missing.png")]


def test_near_duplicates_grouped_transitively() -> None:
    # a-b close, b-c close, a-c just over the threshold: one group {a, b, c} by union-find.
    theta = 0.1  # radians between neighbours; chord distance = 2 sin(theta / 2) ~ 0.09996
    import math

    table = {
        "a": [1.0, 0.0, 0.0],
        "b": [math.cos(theta), math.sin(theta), 0.0],
        "c": [math.cos(2 * theta), math.sin(2 * theta), 0.0],
        "d": [0.0, 0.0, 5.0],  # far away; scale does not matter after normalisation
        "e": [0.0, 0.0, 2.0],  # same direction as d
        "f": [0.0, 1.0, 0.0],
    }
    paths = list(table)
    report = find_near_duplicates(paths, _vectors(table), threshold=0.15, batch_size=4, block_size=2)
    assert report.kept == ["a", "d", "f"]
    removed = {d.path: d for d in report.removed}
    assert set(removed) == {"b", "c", "e"}
    assert removed["b"].kept == "a" and removed["b"].kind == "near"
    assert removed["c"].kept == "a" and removed["c"].matched == "b"
    assert removed["c"].distance == pytest.approx(2 * math.sin(theta / 2), abs=2e-4)  # rows are stored in float16
    assert removed["e"].kept == "d" and removed["e"].distance == pytest.approx(0.0, abs=1e-3)
    # a threshold between the neighbour distance and a-c keeps only exact-direction pairs
    strict = find_near_duplicates(paths, _vectors(table), threshold=0.05)
    assert strict.kept == ["a", "b", "c", "d", "f"]


def test_blocks_match_single_block() -> None:
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(40, 8, generator=gen)
    noisy = base[:20] + 0.01 * torch.randn(20, 8, generator=gen)
    table = {f"{i}": v.tolist() for i, v in enumerate(torch.cat([base, noisy]))}
    paths = list(table)
    small = find_near_duplicates(paths, _vectors(table), block_size=7, batch_size=9)
    large = find_near_duplicates(paths, _vectors(table), block_size=1000)
    assert small.kept == large.kept == [str(i) for i in range(40)]
    assert small.removed == large.removed
    assert {d.path: d.kept for d in small.removed} == {str(40 + i): str(i) for i in range(20)}


def test_bad_embeddings() -> None:
    with pytest.raises(EmbeddingError, match=r"shape \[2, D\]"):
        find_near_duplicates(["a", "b"], lambda paths: torch.zeros(3, 4))
    with pytest.raises(EmbeddingError, match="non-finite"):
        find_near_duplicates(["a"], lambda paths: torch.full((1, 4), float("nan")))
    with pytest.raises(InvalidConfigError, match="threshold"):
        find_near_duplicates(["a"], lambda paths: torch.ones(1, 4), threshold=3.0)


def test_deduplicate_and_apply(tmp_path: Path) -> None:
    a = make_image(tmp_path / "a.png", (255, 0, 0))
    b = make_image(tmp_path / "b.png", (0, 255, 0))
    a2 = tmp_path / "a2.png"
    shutil.copy(a, a2)
    c = make_image(tmp_path / "c.png", (0, 0, 255))
    table = {"a.png": [1.0, 0.0], "b.png": [0.0, 1.0], "a2.png": [1.0, 0.0], "c.png": [1.0, 0.01]}
    embed = _vectors(table)
    report = deduplicate([str(a), str(b), str(a2), str(c)], embed=embed)
    assert embed.calls == [3]  # exact copies are not embedded
    assert report.kept == [str(a), str(b)]
    kinds = {Path(d.path).name: (d.kind, Path(d.kept).name) for d in report.removed}
    assert kinds == {"a2.png": ("exact", "a.png"), "c.png": ("near", "a.png")}
    assert report.summary() == {"kept": 2, "removed_exact": 1, "removed_near": 1, "unreadable": 0, "threshold": 0.15,
                                "search": "exact", "index_bytes": 0}
    posts = [Post("1", "t", (str(a), str(c))), Post("2", "t", (str(a2),)), Post("3", "t", ("https://x/y.jpg",))]
    assert list(apply_dedup(posts, report)) == [Post("1", "t", (str(a),)), posts[2]]
