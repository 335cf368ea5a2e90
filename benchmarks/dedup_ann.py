"""Near-duplicate search at corpus scale: exact all-pairs against FAISS, on synthetic embeddings.

Run: ``python -m benchmarks.dedup_ann --n 200000 --dim 128`` (about 10 minutes on 2 busy cores).

Both searches run the real :func:`imgsent.distill.dedup.find_near_duplicates`, each in its own
process, on the same embeddings: clustered unit vectors (a stand-in for image features, where
most images have many neighbours at cosine 0.6-0.9) with 2 % planted near duplicates at
distances from 0.02 to 0.2 around the paper's 0.15 threshold, and chains of them. Reported:
wall time, peak extra resident memory during the search, pair recall of FAISS against exact
(pairs under the threshold), and whether the removed images are identical. Results go to
``benchmarks/results/dedup_ann.json``; extrapolation to 3.7 M images is printed with its model.
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


def make_embeddings(n: int, dim: int, seed: int = 0) -> Any:
    """``n`` clustered unit vectors, the last 2 % planted near duplicates (half of them in chains)."""
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
        block = centres[rng.integers(0, clusters, stop - start)] + 0.05 * rng.standard_normal((stop - start, dim), dtype=np.float32)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    sources = rng.integers(0, n_base, n_dup)
    sources[n_dup // 2 :] = n_base + rng.integers(0, n_dup // 2, n_dup - n_dup // 2)  # chains: copies of copies
    scale = rng.uniform(0.02, 0.2, n_dup).astype(np.float32) / np.sqrt(dim)  # distance ~ scale * sqrt(dim)
    for k in range(n_dup):
        v = out[sources[k]] + scale[k] * rng.standard_normal(dim, dtype=np.float32)
        out[n_base + k] = v / np.linalg.norm(v)
    return out


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _run(search: str, n: int, dim: int, queue: Any) -> None:
    """Child process: build the embeddings, run one search, report time, memory and candidates."""
    import torch

    from imgsent.distill import dedup

    emb = torch.from_numpy(make_embeddings(n, dim))
    paths = [str(i) for i in range(n)]
    found: list[tuple[Any, Any]] = []
    original = dedup._candidate_pairs

    def recording(*args: Any) -> Any:
        for i, j in original(*args):
            found.append((i.clone(), j.clone()))
            yield i, j

    dedup._candidate_pairs = recording  # records what the search returned; it does no work of its own
    base, peak, stop = _rss_mib(), [0.0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    report = dedup.find_near_duplicates(paths, lambda chunk: emb[[int(p) for p in chunk]], threshold=THRESHOLD,
                                        search=search, batch_size=65536)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    i = torch.cat([a for a, _ in found]) if found else torch.empty(0, dtype=torch.int64)
    j = torch.cat([b for _, b in found]) if found else torch.empty(0, dtype=torch.int64)
    emb = torch.nn.functional.normalize(emb, dim=1)
    true = torch.linalg.vector_norm(emb[i] - emb[j], dim=1) < THRESHOLD
    pairs = sorted(zip(i[true].tolist(), j[true].tolist()))
    queue.put({
        "search": search, "seconds": seconds, "extra_peak_mib": max(0.0, peak[0] - base), "baseline_mib": base,
        "pairs": pairs, "removed": sorted(d.path for d in report.removed),
    })


def measure(search: str, n: int, dim: int) -> dict[str, Any]:
    """Run one search in a fresh process and return its figures."""
    ctx = get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(search, n, dim, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "dedup_ann.json")
    args = parser.parse_args()
    load = load_average()[0]
    exact = measure("exact", args.n, args.dim)
    approx = measure("faiss", args.n, args.dim)
    truth, got = set(map(tuple, exact["pairs"])), set(map(tuple, approx["pairs"]))
    recall = len(truth & got) / len(truth) if truth else 1.0
    scale = PAPER_CORPUS / args.n
    matrix_gib = PAPER_CORPUS * args.dim * 4 / 2**30
    result = {
        "n": args.n, "dim": args.dim, "threshold": THRESHOLD, "load_average_1min": load,
        "exact_seconds": exact["seconds"], "faiss_seconds": approx["seconds"],
        "speedup": exact["seconds"] / approx["seconds"],
        "exact_extra_peak_mib": exact["extra_peak_mib"], "faiss_extra_peak_mib": approx["extra_peak_mib"],
        "baseline_mib": exact["baseline_mib"],
        "true_pairs": len(truth), "faiss_pairs_found": len(truth & got), "pair_recall": recall,
        "removed_exact": len(exact["removed"]), "removed_faiss": len(approx["removed"]),
        "same_removed": exact["removed"] == approx["removed"],
        "extrapolated_3_7M": {
            "exact_hours": exact["seconds"] * scale**2 / 3600,
            "faiss_hours": approx["seconds"] * scale**1.5 / 3600,
            "model": "exact ~ N^2; FAISS IVF with nlist ~ 4 sqrt(N) and fixed nprobe ~ N^1.5",
            "embedding_matrix_gib": matrix_gib,
            "faiss_index_extra_gib": matrix_gib,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
