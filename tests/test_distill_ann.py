"""FAISS candidates for near-duplicate search: the same removals as the exact search."""

from __future__ import annotations

import pytest
import torch

from imgsent.distill.ann import default_nlist
from imgsent.distill.dedup import find_near_duplicates

faiss = pytest.importorskip("faiss", reason="needs the ann extra: pip install 'imgsent[ann]'")


def _corpus(n_clusters: int = 40, per_cluster: int = 60, dim: int = 48, seed: int = 0) -> torch.Tensor:
    """Clustered unit vectors with planted near duplicates, chains and pairs just over the threshold."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(n_clusters, dim, generator=g), dim=1)
    base = centres.repeat_interleave(per_cluster, 0) + 0.35 * torch.randn(n_clusters * per_cluster, dim, generator=g)
    base = torch.nn.functional.normalize(base, dim=1)
    picks = torch.randperm(base.shape[0], generator=g)[:300]
    noise = torch.tensor([0.005, 0.012, 0.02, 0.024] * 75).unsqueeze(1)  # distances ~0.03 to ~0.17
    near = torch.nn.functional.normalize(base[picks] + noise * torch.randn(300, dim, generator=g), dim=1)
    chain = torch.nn.functional.normalize(near[:50] + 0.012 * torch.randn(50, dim, generator=g), dim=1)
    return torch.cat([base, near, chain])


def test_faiss_removes_the_same_images_as_exact_search() -> None:
    emb = _corpus()
    paths = [f"{i:05d}.jpg" for i in range(emb.shape[0])]

    def embed(chunk: list[str]) -> torch.Tensor:
        return emb[[int(p[:5]) for p in chunk]]

    exact = find_near_duplicates(paths, embed, search="exact", block_size=700)
    approx = find_near_duplicates(paths, embed, search="faiss")
    assert len(exact.removed) > 100  # the planted duplicates, some in chains
    assert approx.kept == exact.kept
    assert approx.removed == exact.removed  # same groups, same kept image, same matched neighbour and distance


def test_auto_uses_exact_below_the_size_threshold() -> None:
    emb = _corpus(n_clusters=4, per_cluster=100)
    paths = [f"{i:05d}.jpg" for i in range(emb.shape[0])]
    report = find_near_duplicates(paths, lambda c: emb[[int(p[:5]) for p in c]])
    assert report.removed == find_near_duplicates(paths, lambda c: emb[[int(p[:5]) for p in c]], search="exact").removed
    with pytest.raises(ValueError, match="search must be 'auto', 'exact' or 'faiss', got 'hnsw'"):
        find_near_duplicates(paths, lambda c: emb[[int(p[:5]) for p in c]], search="hnsw")  # type: ignore[arg-type]


def test_default_nlist_respects_the_training_minimum() -> None:
    assert default_nlist(10) == 1
    assert default_nlist(3900) == 100
    assert default_nlist(200_000) == 1788


def test_codes_cover_every_row_so_the_search_margin_stays_small(tmp_path) -> None:
    """Rows outside the training sample's range are not clipped: their code error is at most one step per dimension."""
    import numpy as np

    from imgsent.distill.ann import _code_margin, _fit_codes_and_lists, _trained_index, plan_index
    from imgsent.distill.embeddings import build_store

    rng = np.random.default_rng(0)
    dim = 32
    rows = np.abs(rng.standard_normal((3000, dim))).astype(np.float32)  # non-negative, like pooled features
    rows[:dim] *= 0.1
    rows[np.arange(dim), np.arange(dim)] = 50.0  # each of these rows spikes in a dimension of its own
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    store = build_store([str(i) for i in range(len(rows))], lambda names: rows[[int(n) for n in names]],
                        tmp_path / "store", key="k")
    plan = plan_index(store.n, dim, nlist=8, memory_gb=0.0001)  # 4-bit codes, a training sample of a few rows
    assert plan.codec == "SQ4" and plan.train_rows < 300  # about 1 in 10 rows: most spikes are left out
    index = _trained_index(store, plan, seed=0)
    _fit_codes_and_lists(index, store, block_rows=1000)
    stored = store.rows(np.arange(store.n))
    index.add(stored)
    error = np.abs(stored - index.sa_decode(index.sa_encode(stored)))
    step = (stored.max(axis=0) - stored.min(axis=0)) / 15
    assert (error <= step + 1e-6).all()
    assert index.ntotal == store.n
    assert _code_margin(index, store, 0.98875, seed=0) < 0.3  # clipped spikes would move inner products by ~1
