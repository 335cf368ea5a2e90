"""Remove exact and near-duplicate images, as the paper does before labelling.

* **Exact** duplicates share the SHA-256 of their file bytes.
* **Near** duplicates: images are embedded by a caller-supplied function, the embeddings
  are L2-normalised, and every pair whose Euclidean distance is below ``threshold``
  (paper: 0.15) is linked. Linked images form groups (union-find, so links are
  transitive) and one image per group is kept: the first in input order.

For unit vectors the distance is ``sqrt(2 - 2 cos)``, so ``0.15`` means cosine similarity
above ``1 - 0.15**2 / 2 = 0.98875``. The search is exact (all pairs), in blocks of
``block_size`` rows, so extra memory is ``O(block_size**2)`` on top of the ``N x D``
float32 embedding matrix; time is ``O(N**2 D)``, fine for up to about a hundred thousand
images on a CPU. Larger corpora use a FAISS index (:mod:`imgsent.distill.ann`) when
``imgsent[ann]`` is installed.

The embedding function is injected, so this module does not depend on any model code:
it takes a list of image paths and returns a float tensor of shape ``[len(paths), D]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from imgsent.distill.corpus import Post
from imgsent.errors import EmbeddingError, InvalidConfigError
from imgsent.hashing import file_sha256

if TYPE_CHECKING:
    import torch

EmbedFn = Callable[[list[str]], "torch.Tensor"]
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
    """

    kept: list[str] = field(default_factory=list)
    removed: list[Duplicate] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    threshold: float | None = None

    def summary(self) -> dict[str, Any]:
        """Counts by kind, JSON-ready."""
        exact = sum(d.kind == "exact" for d in self.removed)
        return {
            "kept": len(self.kept),
            "removed_exact": exact,
            "removed_near": len(self.removed) - exact,
            "unreadable": len(self.unreadable),
            "threshold": self.threshold,
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
) -> DedupReport:
    """Group images whose normalised embeddings lie closer than ``threshold``; keep one per group.

    Args:
        paths: Image paths (distinct).
        embed: Function mapping a list of paths to a float tensor ``[len(paths), D]``.
        threshold: Euclidean distance between L2-normalised embeddings below which two
            images are duplicates. Default 0.15 (the paper's value).
        batch_size: Paths passed to ``embed`` per call. Default 256.
        block_size: Rows per block of the distance computation. Default 4096.
        search: ``"exact"`` compares all pairs; ``"faiss"`` finds candidates with a FAISS
            inverted-file index (:mod:`imgsent.distill.ann`, ``imgsent[ann]``); ``"auto"`` uses
            FAISS from ``ann.ANN_MIN_SIZE`` images on when it is installed. Candidates are checked
            alike, so both remove the same images whenever FAISS finds every pair.

    Returns:
        A :class:`DedupReport`; each removed image names its group's kept image, the
        neighbour it matched and their distance.

    Raises:
        EmbeddingError: ``embed`` returned the wrong shape or non-finite values.
        InvalidConfigError: An argument is out of range, or ``paths`` repeat.

    Example:
        >>> report = find_near_duplicates(paths, embed, threshold=0.15)  # doctest: +SKIP
        >>> report.removed[0]  # doctest: +SKIP
        Duplicate(path='b.jpg', kept='a.jpg', matched='a.jpg', kind='near', distance=0.031)
    """
    import torch

    if not 0.0 <= threshold <= 2.0:
        raise InvalidConfigError(f"threshold is a distance between unit vectors, in [0, 2]; got {threshold!r}.")
    if batch_size < 1 or block_size < 1:
        raise InvalidConfigError(f"batch_size and block_size must be >= 1, got {batch_size} and {block_size}.")
    paths = list(paths)
    if len(set(paths)) != len(paths):
        raise InvalidConfigError("paths must be distinct; run find_exact_duplicates first or drop repeats.")
    report = DedupReport(threshold=threshold)
    if not paths:
        return report
    emb = _embed_all(paths, embed, batch_size)
    n = emb.shape[0]
    parent = list(range(n))
    best: dict[int, tuple[float, int]] = {}  # node -> (distance, neighbour) of its closest link

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # cos > 1 - t^2/2  <=>  distance < t (unit vectors); the slack covers float32 rounding, and
    # candidates are then checked with the directly computed distance (no cancellation error).
    min_cos = 1.0 - threshold * threshold / 2.0 - 1e-5
    for i_idx, j_idx in _candidate_pairs(emb, min_cos, block_size, search):
        dists = torch.linalg.vector_norm(emb[i_idx] - emb[j_idx], dim=1)
        for i, j, dist in zip(i_idx.tolist(), j_idx.tolist(), dists.tolist()):
            if dist >= threshold:
                continue
            for node, mate in ((i, j), (j, i)):
                if node not in best or (dist, mate) < best[node]:  # ties: the earliest mate, in any search order
                    best[node] = (dist, mate)
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)  # the root is the earliest index
    for i, path in enumerate(paths):
        root = find(i)
        if root == i:
            report.kept.append(path)
        else:
            dist, mate = best[i]
            report.removed.append(Duplicate(path, paths[root], paths[mate], "near", round(dist, 6)))
    return report


def deduplicate(
    paths: Iterable[str],
    *,
    embed: EmbedFn | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    batch_size: int = 256,
    block_size: int = 4096,
    search: SearchMethod = "auto",
) -> DedupReport:
    """Remove exact duplicates, then (when ``embed`` is given) near duplicates among the rest.

    Example:
        >>> report = deduplicate(paths, embed=my_embed)  # doctest: +SKIP
        >>> report.summary()  # doctest: +SKIP
        {'kept': 740, 'removed_exact': 6, 'removed_near': 4, 'unreadable': 0, 'threshold': 0.15}
    """
    exact = find_exact_duplicates(list(paths))
    if embed is None:
        return exact
    near = find_near_duplicates(
        exact.kept, embed, threshold=threshold, batch_size=batch_size, block_size=block_size, search=search
    )
    # An exact copy of an image removed as a near duplicate belongs to the same group.
    survivor = {d.path: d.kept for d in near.removed}
    removed = [replace(d, kept=survivor.get(d.kept, d.kept)) for d in exact.removed] + near.removed
    return DedupReport(kept=near.kept, removed=removed, unreadable=exact.unreadable, threshold=threshold)


def apply_dedup(posts: Iterable[Post], report: DedupReport) -> Iterable[Post]:
    """Drop removed images from posts, and posts left without images.

    Unreadable images are dropped too. URLs (not yet fetched) are left untouched.
    """
    gone = {d.path for d in report.removed} | set(report.unreadable)
    for post in posts:
        images = tuple(i for i in post.images if i not in gone)
        if images:
            yield replace(post, images=images) if len(images) != len(post.images) else post


def _candidate_pairs(
    emb: torch.Tensor, min_cos: float, block_size: int, search: SearchMethod
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Index pairs ``i < j`` with inner product above ``min_cos``: all pairs in blocks, or FAISS's."""
    import importlib.util

    import torch

    from imgsent.distill import ann

    if search not in ("auto", "exact", "faiss"):
        raise ValueError(f"search must be 'auto', 'exact' or 'faiss', got {search!r}.")
    n = emb.shape[0]
    if search == "faiss" or (search == "auto" and n >= ann.ANN_MIN_SIZE and importlib.util.find_spec("faiss")):
        yield from ann.faiss_candidates(emb, min_cos)
        return
    for start in range(0, n, block_size):
        rows = emb[start : start + block_size]
        for other in range(start, n, block_size):
            a, b = torch.nonzero(rows @ emb[other : other + block_size].T > min_cos, as_tuple=True)
            i, j = a + start, b + other
            keep = j > i
            if keep.any():
                yield i[keep], j[keep]


def _embed_all(paths: list[str], embed: EmbedFn, batch_size: int) -> torch.Tensor:
    import torch

    parts = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        out = torch.as_tensor(embed(chunk))
        if out.ndim != 2 or out.shape[0] != len(chunk):
            raise EmbeddingError(
                f"embed() must return a tensor of shape [{len(chunk)}, D] for {len(chunk)} paths, "
                f"got shape {tuple(out.shape)}."
            )
        out = out.detach().to(dtype=torch.float32, device="cpu")
        if not torch.isfinite(out).all():
            raise EmbeddingError("embed() returned non-finite values (NaN or inf); check the images and the model.")
        parts.append(torch.nn.functional.normalize(out, dim=1))
    return torch.cat(parts)


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
    "sha256_file",
]
