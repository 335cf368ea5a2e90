"""Near-duplicate candidates with a compressed FAISS index, for corpora too large for the all-pairs search.

The exact search in :mod:`imgsent.distill.dedup` compares every pair: ``O(N**2 D)`` time, hours
at the paper's 3.7 M images. Here the stored embeddings (:mod:`imgsent.distill.embeddings`) go
into an inverted-file index: k-means cuts the sphere into ``nlist`` cells and each image is
compared only with the images of its ``nprobe`` nearest cells. The index keeps *compressed*
codes, never the float vectors: 8-bit scalar quantisation (``SQ8``, ``D`` bytes per image)
when it fits in the memory budget, else 4-bit (``SQ4``, ``D / 2`` bytes). The embeddings are
added and searched a block at a time from disk, so the only corpus-sized structure in memory
is the index itself, each list sized exactly once. The codes quantise each row's residual to
its cell centre over each dimension's range in the whole corpus, so nothing is clipped.

Compression moves inner products a little, so the range search uses a lower cut: the
threshold's cosine minus a margin measured on a sample of the corpus (the largest change of
``x . y`` that the codes can cause for a pair at the threshold). Every candidate is then
re-checked by :mod:`~imgsent.distill.dedup` with the exact distance between the stored rows,
so compression can add work but never a pair; pairs are lost only when two near duplicates
fall in cells that are not probed. Needs ``pip install 'imgsent[ann]'`` (``faiss-cpu``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from imgsent.distill.embeddings import EmbeddingStore
from imgsent.errors import InvalidConfigError, require_extra

ANN_MIN_SIZE = 100_000
"""``search="auto"`` uses FAISS from this many images on (when installed); below, the exact search."""
DEFAULT_MEMORY_GB = 4.0


@dataclass(frozen=True)
class IndexPlan:
    """How the index is built: cells, probes, code and the share of the memory budget it takes.

    Attributes:
        nlist: k-means cells.
        nprobe: Cells searched per query.
        codec: ``"SQ8"`` or ``"SQ4"``.
        index_bytes: Expected size of the codes and ids.
        train_rows: Rows used to train k-means and the quantiser.
    """

    nlist: int
    nprobe: int
    codec: str
    index_bytes: int
    train_rows: int


def default_nlist(n: int) -> int:
    """Number of k-means cells: about ``4 sqrt(N)``, at least 1 and at most ``N // 39`` (FAISS's training minimum).

    Example:
        >>> default_nlist(200_000), default_nlist(3_700_000)
        (1788, 7694)
    """
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def plan_index(n: int, dim: int, *, memory_gb: float = DEFAULT_MEMORY_GB, nlist: int | None = None,
               nprobe: int = 16, train_size: int = 39) -> IndexPlan:
    """Pick the code and the training sample so the index fits in about half of ``memory_gb``.

    k-means trains on up to ``train_size`` rows per cell (FAISS's minimum, 39, by default): its
    cost, ``iterations x rows x nlist x dim``, is most of the index's build time, and the cells
    only decide which images are compared, never whether a pair is a duplicate. The float32
    sample is also capped to half the index's own size (at least one row per cell), so training
    never needs more memory than the index it builds.

    Example:
        >>> plan_index(3_700_000, 1280, memory_gb=4.0).codec
        'SQ4'
        >>> plan_index(300_000, 1280, memory_gb=4.0).codec
        'SQ8'
        >>> plan_index(3_700_000, 1280, memory_gb=4.0).train_rows
        234140
    """
    nlist = default_nlist(n) if nlist is None else nlist
    if not 1 <= nlist <= max(1, n) or nprobe < 1:
        raise InvalidConfigError(f"nlist must be in [1, N={n}] and nprobe >= 1; got nlist={nlist}, nprobe={nprobe}.")
    if memory_gb <= 0:
        raise InvalidConfigError(f"memory_gb must be > 0, got {memory_gb!r}.")
    budget = memory_gb * 2**30 / 2
    codec = "SQ8" if n * (dim + 8) <= budget else "SQ4"
    code = dim if codec == "SQ8" else -(-dim // 2)
    index_bytes = n * (code + 8)
    train_cap = max(nlist, index_bytes // (2 * 4 * dim))  # float32 rows, freed before the codes are fitted
    return IndexPlan(nlist, min(nprobe, nlist), codec, index_bytes, min(n, nlist * train_size, train_cap))


def faiss_candidates(
    store: EmbeddingStore, min_cos: float, plan: IndexPlan, *, query_block: int = 4096, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield index pairs ``(i, j)``, ``i < j``, that may have an inner product above ``min_cos``.

    Args:
        store: The L2-normalised embeddings.
        min_cos: Inner-product cut (the distance threshold converted, with float slack).
        plan: Index settings (:func:`plan_index`).
        query_block: Rows added and queried per step (bounds memory besides the index). Default 4096.
        seed: Seed of the training sample and of k-means, so runs are repeatable.

    Yields:
        Pairs of int64 arrays ``(i, j)`` of equal length; a pair may repeat across blocks.

    Raises:
        MissingExtraError: ``faiss`` is not installed.
    """
    require_extra("faiss", "ann")
    index = _trained_index(store, plan, seed)
    _fit_codes_and_lists(index, store, query_block)
    for _, block in store.iter_blocks(query_block):
        index.add(block)
    margin = _code_margin(index, store, min_cos, seed)
    index.nprobe = plan.nprobe
    for start, block in store.iter_blocks(query_block):
        lims, _, found = index.range_search(block, float(min_cos - margin))
        queries = np.repeat(np.arange(start, start + len(block), dtype=np.int64), np.diff(lims).astype(np.int64))
        keep = queries < found  # each pair once, from its smaller index
        if keep.any():
            yield queries[keep], found[keep].astype(np.int64)


def _trained_index(store: EmbeddingStore, plan: IndexPlan, seed: int):  # noqa: ANN202 (faiss type)
    """An IVF index with its cells trained on an evenly spread sample of rows; its codes are fitted afterwards.

    Only the cells are trained here (k-means on the sample, inner-product metric). The codes
    quantise each row's residual to its cell centre over ranges taken from the whole corpus
    (:func:`_fit_codes_and_lists`), so the sample's residuals are never materialised.
    """
    import faiss

    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(store.n, plan.train_rows, replace=False))
    sample = store.rows(picks)
    quantizer = faiss.IndexFlatIP(store.dim)
    clustering = faiss.Clustering(store.dim, plan.nlist)
    clustering.seed, clustering.niter, clustering.spherical = seed, 10, True  # as IndexIVF trains for inner products
    clustering.min_points_per_centroid = 1  # a small sample is not an error
    clustering.train(sample, quantizer)
    del sample
    qtype = faiss.ScalarQuantizer.QT_8bit if plan.codec == "SQ8" else faiss.ScalarQuantizer.QT_4bit
    index = faiss.IndexIVFScalarQuantizer(quantizer, store.dim, plan.nlist, qtype, faiss.METRIC_INNER_PRODUCT)
    index.referenced_objects = [quantizer]  # the index does not own its quantizer: keep it alive
    return index


def _fit_codes_and_lists(index, store: EmbeddingStore, block_rows: int) -> None:  # noqa: ANN001 (faiss type)
    """One pass over the rows: the codes' ranges from every row, and every list's exact capacity.

    * **Ranges.** A scalar quantiser trained on a sample clips the residuals outside the
      sample's range per dimension; on real photo features that moved inner products by up to
      0.3 and made the search margin (and the candidates) explode. Trained on each dimension's
      minimum and maximum residual over the whole corpus, nothing is clipped and the error of
      every value is at most one step.
    * **Capacity.** Lists grow by doubling as rows are added, which leaves up to half of each
      unused (the index would take about 1.75x its codes); every row is assigned to its cell
      here and each list is sized once.
    """
    import faiss

    ivf = faiss.downcast_index(index)
    centres = ivf.quantizer.reconstruct_n(0, ivf.nlist)
    counts = np.zeros(ivf.nlist, dtype=np.int64)
    low = np.full(store.dim, np.inf, dtype=np.float32)
    high = np.full(store.dim, -np.inf, dtype=np.float32)
    for _, block in store.iter_blocks(block_rows):
        cells = ivf.quantizer.assign(block, 1).ravel()
        counts += np.bincount(cells, minlength=ivf.nlist)
        residuals = block - centres[cells]
        np.minimum(low, residuals.min(axis=0), out=low)
        np.maximum(high, residuals.max(axis=0), out=high)
    ivf.sq.train(np.stack([low, high]))
    ivf.is_trained = True
    lists = faiss.downcast_InvertedLists(ivf.invlists)
    for cell in np.flatnonzero(counts).tolist():
        lists.resize(cell, int(counts[cell]))  # allocates the capacity ...
        lists.resize(cell, 0)  # ... which the list keeps while it is empty again


def _code_margin(index, store: EmbeddingStore, min_cos: float, seed: int, sample: int = 2000) -> float:  # noqa: ANN001
    """How far the codes can move the inner product of a pair at the threshold, with a 1.5x safety factor.

    For a stored row ``x`` with code error ``e`` and a query ``q`` with ``|q - x| <= t``:
    ``|q . e| <= |x . e| + t |e|``; both terms are measured on a sample of rows.
    """
    rng = np.random.default_rng(seed + 1)
    rows = store.rows(np.sort(rng.choice(store.n, min(sample, store.n), replace=False)))
    error = rows - index.sa_decode(index.sa_encode(rows))
    reach = math.sqrt(max(0.0, 2.0 - 2.0 * min_cos))
    worst = np.abs((rows * error).sum(axis=1)) + reach * np.linalg.norm(error, axis=1)
    return float(1.5 * worst.max())


__all__ = ["ANN_MIN_SIZE", "DEFAULT_MEMORY_GB", "IndexPlan", "default_nlist", "faiss_candidates", "plan_index"]
