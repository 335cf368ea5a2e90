"""Remove exact and near-duplicate images, as the paper does before labelling.

* **Exact** duplicates share the SHA-256 of their file bytes.
* **Near** duplicates: images are embedded by a caller-supplied function, the embeddings
  are L2-normalised, and every pair whose Euclidean distance is below ``threshold``
  (paper: 0.15) is linked. Linked images form groups (union-find, so links are
  transitive) and one image per group is kept: the first in input order.

For unit vectors the distance is ``sqrt(2 - 2 cos)``, so ``0.15`` means cosine similarity
above ``1 - 0.15**2 / 2 = 0.98875``. The embeddings are written to disk in float16 chunks
(:mod:`imgsent.distill.embeddings`) and read back a block at a time, so memory does not hold
the ``N x D`` matrix. Candidate pairs come from the all-pairs search (``O(N**2 D)`` time, fine
up to about a hundred thousand images on a CPU) or, for larger corpora, from a compressed
FAISS index (:mod:`imgsent.distill.ann`, ``imgsent[ann]``); each candidate is then re-checked
with the float32 distance between the stored rows.

The embedding function is injected, so this module does not depend on any model code:
it takes a list of image paths and returns a float tensor of shape ``[len(paths), D]``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from imgsent.distill.ann import ANN_MIN_SIZE, DEFAULT_MEMORY_GB, faiss_candidates, plan_index
from imgsent.distill.corpus import Post
from imgsent.distill.embeddings import DEFAULT_CHUNK_SIZE, EmbedFn, EmbeddingStore, Progress, build_store, store_key
from imgsent.errors import InvalidConfigError
from imgsent.hashing import file_sha256

DuplicateKind = Literal["exact", "near"]
SearchMethod = Literal["auto", "exact", "faiss"]
DEFAULT_THRESHOLD = 0.15


@dataclass(frozen=True)
class Duplicate:
    """One removed image.

    Attributes:
        path: The removed image.
        kept: The image kept for its group.
        matched: The image it was found to duplicate (its nearest linked neighbour; equals
            ``kept`` for exact duplicates).
        kind: ``"exact"`` (same bytes) or ``"near"`` (embedding distance below the threshold).
        distance: Euclidean distance between the L2-normalised embeddings of ``path`` and
            ``matched`` (``0.0`` for exact duplicates).
    """

    path: str
    kept: str
    matched: str
    kind: DuplicateKind
    distance: float = 0.0


@dataclass
class DedupReport:
    """Result of :func:`deduplicate`.

    Attributes:
        kept: Images kept, in input order.
        removed: One :class:`Duplicate` per removed image.
        unreadable: Images whose bytes could not be read, mapped to the error; they are
            neither kept nor removed as duplicates.
        threshold: Distance threshold used for near duplicates (``None`` if not run).
        links: Every pair of images found closer than ``threshold``, with its distance
            (a group of ``k`` near duplicates has at least ``k - 1`` links).
        search: How candidate pairs were found: ``"exact"`` (all pairs), or the FAISS index
            (e.g. ``"faiss IVF2190,SQ8 nprobe=16"``); ``None`` if the near search did not run.
        index_bytes: Expected size of the FAISS index's codes and ids (0 for the exact search).
    """

    kept: list[str] = field(default_factory=list)
    removed: list[Duplicate] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    threshold: float | None = None
    links: list[tuple[str, str, float]] = field(default_factory=list)
    search: str | None = None
    index_bytes: int = 0

    def summary(self) -> dict[str, Any]:
        """Counts by kind, JSON-ready."""
        exact = sum(d.kind == "exact" for d in self.removed)
        return {
            "kept": len(self.kept),
            "removed_exact": exact,
            "removed_near": len(self.removed) - exact,
            "unreadable": len(self.unreadable),
            "threshold": self.threshold,
            "search": self.search,
            "index_bytes": self.index_bytes,
        }


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    return file_sha256(path)


def find_exact_duplicates(paths: Sequence[str]) -> DedupReport:
    """Group images with identical bytes; keep the first of each group.

    Example:
        >>> report = find_exact_duplicates(["a.jpg", "copy_of_a.jpg", "b.jpg"])  # doctest: +SKIP
        >>> [(d.path, d.kept) for d in report.removed]  # doctest: +SKIP
        [('copy_of_a.jpg', 'a.jpg')]
    """
    report = DedupReport()
    first: dict[str, str] = {}
    for path in dict.fromkeys(paths):
        try:
            digest = sha256_file(path)
        except OSError as exc:
            report.unreadable[path] = f"{type(exc).__name__}: {exc}"
            continue
        if digest in first:
            report.removed.append(Duplicate(path, first[digest], first[digest], "exact", 0.0))
        else:
            first[digest] = path
            report.kept.append(path)
    return report


def find_near_duplicates(
    paths: Sequence[str],
    embed: EmbedFn,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    batch_size: int = 256,
    block_size: int = 4096,
    search: SearchMethod = "auto",
    workdir: str | os.PathLike[str] | None = None,
    model_key: str = "",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    nlist: int | None = None,
    nprobe: int = 16,
    memory_gb: float = DEFAULT_MEMORY_GB,
    progress: Progress | None = None,
) -> DedupReport:
    """Group images whose normalised embeddings lie closer than ``threshold``; keep one per group.

    The embeddings go to disk in durable chunks (:mod:`imgsent.distill.embeddings`); with
    ``workdir`` they stay there, and a rerun after an interruption embeds only the missing chunks.
    Candidate pairs come from the all-pairs search or a compressed FAISS index
    (:mod:`imgsent.distill.ann`), and every candidate is re-checked with the float32 distance
    between the stored rows, so both searches report the same distances for the pairs they find.

    Args:
        paths: Image paths (distinct).
        embed: Function mapping a list of paths to a float tensor ``[len(paths), D]``.
        threshold: Euclidean distance between L2-normalised embeddings below which two
            images are duplicates. Default 0.15 (the paper's value).
        batch_size: Paths passed to ``embed`` per call. Default 256.
        block_size: Rows per block of the all-pairs search, and per add/query step of the index. Default 4096.
        search: ``"exact"`` compares all pairs; ``"faiss"`` finds candidates with a compressed FAISS
            inverted-file index (``imgsent[ann]``); ``"auto"`` uses FAISS from ``ann.ANN_MIN_SIZE``
            images on when it is installed.
        workdir: Folder for the embedding chunks (kept, for resuming); ``None`` uses a temporary folder.
        model_key: What the embeddings depend on besides the paths (e.g. a model digest); a store
            with another key is recomputed.
        chunk_size: Rows per chunk file. Default 1024.
        nlist: FAISS k-means cells; ``None``: about ``4 sqrt(N)``.
        nprobe: FAISS cells searched per query. Default 16.
        memory_gb: Memory budget of the search; the index's code is chosen to use about half. Default 4.
        progress: Called with ``(images embedded, total)`` during the embedding pass.

    Returns:
        A :class:`DedupReport`; each removed image names its group's kept image, the
        neighbour it matched and their distance, and ``links`` lists every linked pair.

    Raises:
        EmbeddingError: ``embed`` returned the wrong shape or non-finite values.
        InvalidConfigError: An argument is out of range, or ``paths`` repeat.

    Example:
        >>> report = find_near_duplicates(paths, embed, threshold=0.15)  # doctest: +SKIP
        >>> report.removed[0]  # doctest: +SKIP
        Duplicate(path='b.jpg', kept='a.jpg', matched='a.jpg', kind='near', distance=0.031)
    """
    if not 0.0 <= threshold <= 2.0:
        raise InvalidConfigError(f"threshold is a distance between unit vectors, in [0, 2]; got {threshold!r}.")
    if batch_size < 1 or block_size < 1:
        raise InvalidConfigError(f"batch_size and block_size must be >= 1, got {batch_size} and {block_size}.")
    if search not in ("auto", "exact", "faiss"):
        raise InvalidConfigError(f"search must be 'auto', 'exact' or 'faiss', got {search!r}.")
    paths = list(paths)
    if len(set(paths)) != len(paths):
        raise InvalidConfigError("paths must be distinct; run find_exact_duplicates first or drop repeats.")
    report = DedupReport(threshold=threshold)
    if not paths:
        return report
    with contextlib.ExitStack() as stack:
        folder = workdir if workdir is not None else stack.enter_context(tempfile.TemporaryDirectory(prefix="imgsent-emb-"))
        store = build_store(paths, embed, folder, key=store_key(paths, model_key), batch_size=batch_size,
                            chunk_size=chunk_size, progress=progress)
        # cos > 1 - t^2/2  <=>  distance < t (unit vectors); the slack covers float rounding, and
        # candidates are then checked with the directly computed distance.
        min_cos = 1.0 - threshold * threshold / 2.0 - 1e-3
        if _use_faiss(search, store.n):
            plan = plan_index(store.n, store.dim, memory_gb=memory_gb, nlist=nlist, nprobe=nprobe)
            report.search, report.index_bytes = f"faiss IVF{plan.nlist},{plan.codec} nprobe={plan.nprobe}", plan.index_bytes
            candidates = faiss_candidates(store, min_cos, plan, query_block=block_size)
        else:
            report.search, candidates = "exact", _all_pairs(store, min_cos, block_size)
        links = _links(store, candidates, threshold)
    _group(report, paths, links)
    return report


def _use_faiss(search: str, n: int) -> bool:
    import importlib.util

    return search == "faiss" or (search == "auto" and n >= ANN_MIN_SIZE and importlib.util.find_spec("faiss") is not None)


def _all_pairs(store: EmbeddingStore, min_cos: float, block_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Index pairs ``i < j`` with inner product above ``min_cos``, comparing blocks of stored rows."""
    for start, rows in store.iter_blocks(block_size):
        for other, cols in store.iter_blocks(block_size):
            if other + len(cols) <= start:
                continue
            a, b = np.nonzero(rows @ cols.T > min_cos)
            i, j = a + start, b + other
            keep = j > i
            if keep.any():
                yield i[keep].astype(np.int64), j[keep].astype(np.int64)


def _links(store: EmbeddingStore, candidates: Iterator[tuple[np.ndarray, np.ndarray]],
           threshold: float) -> list[tuple[int, int, float]]:
    """Candidates re-checked with the float32 distance between stored rows; the pairs below ``threshold``."""
    found: dict[tuple[int, int], float] = {}
    for i, j in candidates:
        dist = np.linalg.norm(store.rows(i) - store.rows(j), axis=1)
        for a, b, d in zip(i.tolist(), j.tolist(), dist.tolist()):
            if d < threshold:
                found[(a, b)] = round(d, 6)
    return sorted((a, b, d) for (a, b), d in found.items())


def _group(report: DedupReport, paths: list[str], links: list[tuple[int, int, float]]) -> None:
    """Union-find over the links: the earliest image of each group is kept, the others removed."""
    parent = np.arange(len(paths), dtype=np.int64)
    best: dict[int, tuple[float, int]] = {}  # node -> (distance, neighbour) of its closest link

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for i, j, dist in links:
        for node, mate in ((i, j), (j, i)):
            if node not in best or (dist, mate) < best[node]:  # ties: the earliest mate, in any search order
                best[node] = (dist, mate)
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)  # the root is the earliest index
    report.links = [(paths[i], paths[j], d) for i, j, d in links]
    for i, path in enumerate(paths):
        root = find(i)
        if root == i:
            report.kept.append(path)
        else:
            dist, mate = best[i]
            report.removed.append(Duplicate(path, paths[root], paths[mate], "near", dist))


def deduplicate(
    paths: Iterable[str],
    *,
    embed: EmbedFn | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    batch_size: int = 256,
    block_size: int = 4096,
    search: SearchMethod = "auto",
    **options: Any,
) -> DedupReport:
    """Remove exact duplicates, then (when ``embed`` is given) near duplicates among the rest.

    ``options`` go to :func:`find_near_duplicates` (``workdir``, ``model_key``, ``chunk_size``,
    ``nlist``, ``nprobe``, ``memory_gb``, ``progress``).

    Example:
        >>> report = deduplicate(paths, embed=my_embed)  # doctest: +SKIP
        >>> report.summary()  # doctest: +SKIP
        {'kept': 740, 'removed_exact': 6, 'removed_near': 4, 'unreadable': 0, 'threshold': 0.15, 'search': 'exact', 'index_bytes': 0}
    """
    exact = find_exact_duplicates(list(paths))
    if embed is None:
        return exact
    near = find_near_duplicates(
        exact.kept, embed, threshold=threshold, batch_size=batch_size, block_size=block_size, search=search, **options
    )
    # An exact copy of an image removed as a near duplicate belongs to the same group.
    survivor = {d.path: d.kept for d in near.removed}
    removed = [replace(d, kept=survivor.get(d.kept, d.kept)) for d in exact.removed] + near.removed
    return replace(near, removed=removed, unreadable=exact.unreadable)


def iter_groups(report: DedupReport) -> Iterator[dict[str, Any]]:
    """Every duplicate group, JSON-ready: the kept image, each removed member and every link between them.

    A group is ``{"kept": path, "members": [{"path", "kind", "matched", "distance"}, ...],
    "links": [[path_a, path_b, distance], ...]}``, in the order the kept images appear.

    Example:
        >>> report = DedupReport(kept=["a.jpg"], removed=[Duplicate("b.jpg", "a.jpg", "a.jpg", "near", 0.05)],
        ...                      links=[("a.jpg", "b.jpg", 0.05)])
        >>> next(iter_groups(report))["members"][0]["distance"]
        0.05
    """
    groups: dict[str, dict[str, Any]] = {}
    for d in report.removed:
        group = groups.setdefault(d.kept, {"kept": d.kept, "members": [], "links": []})
        group["members"].append({"path": d.path, "kind": d.kind, "matched": d.matched, "distance": d.distance})
    owner = {d.path: d.kept for d in report.removed}
    for a, b, dist in report.links:
        groups[owner.get(a, a)]["links"].append([a, b, dist])
    for path in report.kept:
        if path in groups:
            yield groups[path]


def apply_dedup(posts: Iterable[Post], report: DedupReport) -> Iterable[Post]:
    """Drop removed images from posts, and posts left without images.

    Unreadable images are dropped too. URLs (not yet fetched) are left untouched.
    """
    gone = {d.path for d in report.removed} | set(report.unreadable)
    for post in posts:
        images = tuple(i for i in post.images if i not in gone)
        if images:
            yield replace(post, images=images) if len(images) != len(post.images) else post


__all__ = [
    "DEFAULT_THRESHOLD",
    "DedupReport",
    "Duplicate",
    "EmbedFn",
    "SearchMethod",
    "apply_dedup",
    "deduplicate",
    "find_exact_duplicates",
    "find_near_duplicates",
    "iter_groups",
    "sha256_file",
]
