"""Near-duplicate search at corpus scale: exact all-pairs against FAISS, on synthetic embeddings.

Run: ``python -m benchmarks.dedup_ann --n 200000 --dim 128 --exact-n 20000``.

Embeddings: ``n`` unit vectors in tight clusters of about 100 (a stand-in for image features:
each image has many neighbours at cosine 0.8-0.95), 2 % of them planted near duplicates at
distances from 0.02 to 0.2 around the paper's 0.15 threshold, half of those copies of copies
(chains). Each measurement runs the real :func:`imgsent.distill.dedup.find_near_duplicates` in
a fresh process, and reports wall time and the peak resident memory added during the search:

* ``faiss``: ``search="faiss"`` on all ``n`` embeddings;
* ``exact``: ``search="exact"`` (all pairs, blocked) on the first ``--exact-n`` embeddings,
  extrapolated to ``n`` as ``N**2`` (all-pairs work; its memory does not grow with ``N``);
* ``truth``: the exact answer on all ``n`` embeddings, from the same function with the all-pairs
  candidates restricted to pairs of clusters that the triangle inequality cannot rule out
  (``|c_a - c_b| < R_a + R_b + t``, with ``R`` each cluster's radius): exact, and affordable only
  because the synthetic clusters are known. FAISS's pair recall and removed images are
  compared with it.

Results go to ``benchmarks/results/dedup_ann.json``, with the extrapolation to 3.7 M images.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, load_average

THRESHOLD = 0.15
PAPER_CORPUS = 3_700_000


def make_embeddings(n: int, dim: int, seed: int = 0, spread: float = 0.03) -> tuple[Any, Any]:
    """``n`` clustered unit vectors (the last 2 % planted near duplicates, half in chains), and the cluster centres."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_dup = n // 50
    n_base = n - n_dup
    clusters = max(1, n_base // 100)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n_base, 65536):
        stop = min(start + 65536, n_base)
        block = centres[rng.integers(0, clusters, stop - start)] + spread * rng.standard_normal((stop - start, dim), dtype=np.float32)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    sources = rng.integers(0, n_base, n_dup)
    sources[n_dup // 2 :] = n_base + rng.integers(0, n_dup // 2, n_dup - n_dup // 2)  # chains: copies of copies
    scale = rng.uniform(0.02, 0.2, n_dup).astype(np.float32) / np.sqrt(dim)  # distance ~ scale * sqrt(dim)
    for k in range(n_dup):
        v = out[sources[k]] + scale[k] * rng.standard_normal(dim, dtype=np.float32)
        out[n_base + k] = v / np.linalg.norm(v)
    return out, centres


def bounded_exact_candidates(emb: Any, centres: Any, min_cos: float) -> Any:
    """All pairs ``i < j`` with inner product above ``min_cos``, skipping cluster pairs too far apart to hold one."""
    import torch

    c = torch.from_numpy(centres)
    assign = torch.cat([torch.argmax(emb[s : s + 65536] @ c.T, dim=1) for s in range(0, emb.shape[0], 65536)])
    radius = torch.linalg.vector_norm(emb - c[assign], dim=1)
    k = c.shape[0]
    big_r = torch.zeros(k).scatter_reduce(0, assign, radius, reduce="amax")
    reach = (2.0 - 2.0 * min_cos) ** 0.5 + 1e-3  # the candidate cut as a distance, with slack
    near = torch.cdist(c, c) < big_r[:, None] + big_r[None, :] + reach
    members = [torch.nonzero(assign == a).flatten() for a in range(k)]
    for a in range(k):
        for b in torch.nonzero(near[a]).flatten().tolist():
            if b < a or len(members[a]) == 0 or len(members[b]) == 0:
                continue
            ia, ib = members[a], members[b]
            x, y = torch.nonzero(emb[ia] @ emb[ib].T > min_cos, as_tuple=True)
            i, j = ia[x], ib[y]
            lo, hi = torch.minimum(i, j), torch.maximum(i, j)
            keep = lo < hi if a != b else i < j
            if keep.any():
                yield lo[keep], hi[keep]


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _run(kind: str, n: int, dim: int, queue: Any, memory_gb: float) -> None:
    """Child process: build the embeddings, run one search, report time, memory and the linked pairs."""
    import numpy as np
    import torch

    from imgsent.distill import dedup

    data, centres = make_embeddings(n, dim)
    paths = [str(i) for i in range(n)]
    search = "exact" if kind == "truth" else kind
    if kind == "truth":  # the all-pairs search restricted to cluster pairs that can hold a link: exact, and fast here
        def pruned(store: Any, min_cos: float, block_size: int) -> Any:
            rows = torch.from_numpy(store.rows(np.arange(store.n)))
            for i, j in bounded_exact_candidates(rows, centres, min_cos):
                yield i.numpy(), j.numpy()

        dedup._all_pairs = pruned  # type: ignore[assignment]
    base, peak, stop = _rss_mib(), [0.0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    report = dedup.find_near_duplicates(paths, lambda chunk: data[[int(p) for p in chunk]], threshold=THRESHOLD,
                                        search=search, batch_size=65536, memory_gb=memory_gb)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    queue.put({
        "search": kind, "seconds": seconds, "extra_peak_mib": max(0.0, peak[0] - base), "baseline_mib": base,
        "pairs": sorted((int(a), int(b)) for a, b, _ in report.links),
        "groups": sorted(tuple(sorted([g["kept"]] + [m["path"] for m in g["members"]])) for g in dedup.iter_groups(report)),
        "removed": sorted(d.path for d in report.removed),
    })


def measure(kind: str, n: int, dim: int, memory_gb: float = 4.0) -> dict[str, Any]:
    """Run one search in a fresh process and return its figures."""
    ctx = get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(kind, n, dim, queue, memory_gb))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--exact-n", type=int, default=20_000, help="embeddings for the timed all-pairs search")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="dedup memory budget (picks 8- or 4-bit codes)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "dedup_ann.json")
    args = parser.parse_args()
    load = load_average()[0]
    approx = measure("faiss", args.n, args.dim, args.memory_gb)
    truth = measure("truth", args.n, args.dim)
    exact = measure("exact", args.exact_n, args.dim)
    true_pairs, got = set(map(tuple, truth["pairs"])), set(map(tuple, approx["pairs"]))
    recall = len(true_pairs & got) / len(true_pairs) if true_pairs else 1.0
    true_groups, got_groups = set(map(tuple, truth["groups"])), set(map(tuple, approx["groups"]))
    exact_at_n = exact["seconds"] * (args.n / args.exact_n) ** 2
    scale = PAPER_CORPUS / args.n
    matrix_gib = PAPER_CORPUS * args.dim * 4 / 2**30
    result = {
        "n": args.n, "dim": args.dim, "threshold": THRESHOLD, "load_average_1min_at_start": load,
        "load_average_1min_at_end": load_average()[0],
        "faiss_seconds": approx["seconds"], "faiss_extra_peak_mib": approx["extra_peak_mib"],
        "exact_n": args.exact_n, "exact_seconds_at_exact_n": exact["seconds"],
        "exact_extra_peak_mib": exact["extra_peak_mib"],
        "exact_seconds_extrapolated_to_n": exact_at_n, "speedup_at_n": exact_at_n / approx["seconds"],
        "truth_seconds_pruned_exact": truth["seconds"], "embeddings_mib": args.n * args.dim * 4 / 2**20,
        "memory_gb": args.memory_gb,
        "true_pairs": len(true_pairs), "faiss_pairs_found": len(true_pairs & got), "pair_recall": recall,
        "extra_pairs": len(got - true_pairs), "extra_pairs_fraction": len(got - true_pairs) / max(1, len(true_pairs)),
        "true_groups": len(true_groups), "same_groups": len(true_groups & got_groups),
        "group_agreement": len(true_groups & got_groups) / max(1, len(true_groups)),
        "removed_exact": len(truth["removed"]), "removed_faiss": len(approx["removed"]),
        "same_removed": truth["removed"] == approx["removed"],
        "extrapolated_3_7M": {
            "exact_hours": exact_at_n * scale**2 / 3600,
            "faiss_hours": approx["seconds"] * scale**1.5 / 3600,
            "model": "exact ~ N^2; FAISS IVF with nlist ~ 4 sqrt(N) and fixed nprobe ~ N^1.5",
            "embedding_matrix_gib_on_disk_float16": matrix_gib / 2,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
