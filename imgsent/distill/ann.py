"""Near-duplicate candidates with FAISS, for corpora too large for the exact all-pairs search.

The exact search in :mod:`imgsent.distill.dedup` compares every pair: ``O(N**2 D)`` time, hours
at the paper's 3.7 M images. Here the L2-normalised embeddings go into an inverted-file index
(``faiss.IndexIVFFlat``, inner product): k-means cuts the sphere into ``nlist`` cells and each
image is compared only with the images of its ``nprobe`` nearest cells. Near duplicates
(cosine above 0.98875 at the paper's threshold) almost always share a cell, so recall stays at
or near 1 (measured in ``benchmarks/dedup_ann.py``) while the work drops by ``nlist / nprobe``.

Candidates are pairs whose inner product exceeds ``min_cos``; :mod:`~imgsent.distill.dedup`
then checks each with the same distance computation as the exact search, so whenever every true
pair is found the same images are removed. Needs ``pip install 'imgsent[ann]'`` (``faiss-cpu``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from imgsent.errors import InvalidConfigError, require_extra

if TYPE_CHECKING:
    import torch

ANN_MIN_SIZE = 100_000
"""``search="auto"`` uses FAISS from this many images on (when installed); below, the exact search."""


def default_nlist(n: int) -> int:
    """Number of k-means cells: about ``4 sqrt(N)``, at least 1 and at most ``N // 39`` (FAISS's training minimum).

    Example:
        >>> default_nlist(200_000), default_nlist(3_700_000)
        (1788, 7694)
    """
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def faiss_candidates(
    emb: torch.Tensor,
    min_cos: float,
    *,
    nlist: int | None = None,
    nprobe: int = 16,
    query_block: int = 16384,
    train_size: int = 256,
    seed: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield index pairs ``(i, j)``, ``i < j``, whose inner product FAISS finds above ``min_cos``.

    Args:
        emb: L2-normalised float32 embeddings ``[N, D]`` on the CPU.
        min_cos: Inner-product cut (the distance threshold converted, with float slack).
        nlist: k-means cells; ``None`` picks :func:`default_nlist`.
        nprobe: Cells searched per query (more: higher recall, slower). Default 16.
        query_block: Queries per ``range_search`` call (bounds memory). Default 16384.
        train_size: Training points per cell for k-means (FAISS recommends 39 to 256). Default 256.
        seed: k-means seed, so runs are repeatable.

    Yields:
        Pairs of int64 tensors ``(i, j)`` of equal length, each pair once across the iteration.

    Raises:
        MissingExtraError: ``faiss`` is not installed.
        InvalidConfigError: ``nlist`` or ``nprobe`` is out of range.
    """
    require_extra("faiss", "ann")
    import faiss
    import numpy as np
    import torch

    n, dim = emb.shape
    nlist = default_nlist(n) if nlist is None else nlist
    if not 1 <= nlist <= max(1, n) or nprobe < 1:
        raise InvalidConfigError(f"nlist must be in [1, N={n}] and nprobe >= 1; got nlist={nlist}, nprobe={nprobe}.")
    data = np.ascontiguousarray(emb.numpy(), dtype=np.float32)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    rng = np.random.default_rng(seed)
    sample = data if n <= nlist * train_size else data[np.sort(rng.choice(n, nlist * train_size, replace=False))]
    index.train(sample)
    index.add(data)
    index.nprobe = min(nprobe, nlist)
    seen: set[tuple[int, int]] = set()  # a pair found from both ends is reported once
    for start in range(0, n, query_block):
        lims, _, found = index.range_search(data[start : start + query_block], float(min_cos))
        queries = np.repeat(np.arange(start, start + len(lims) - 1, dtype=np.int64), np.diff(lims).astype(np.int64))
        lo, hi = np.minimum(queries, found), np.maximum(queries, found)
        keep = lo != hi
        pairs = [(a, b) for a, b in zip(lo[keep].tolist(), hi[keep].tolist()) if (a, b) not in seen]
        seen.update(pairs)
        if pairs:
            i, j = zip(*sorted(pairs))
            yield torch.tensor(i, dtype=torch.int64), torch.tensor(j, dtype=torch.int64)


__all__ = ["ANN_MIN_SIZE", "default_nlist", "faiss_candidates"]
