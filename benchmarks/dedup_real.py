"""The compressed index against the exact search on real photo features, with planted near duplicates and near misses.

Run: ``python -m benchmarks.dedup_real`` (needs ``../shared/data/twitter1-dev`` and ``imgsent[ann]``).

The 750 twitter1-dev photos, plus for every third photo a *near duplicate* (downscaled to half
size and re-encoded at JPEG quality 60, as a repost would be) and for every third other photo a
*near miss* (its central 70 % crop: the same scene, not the same picture). Every image is
embedded once, as the dedup stage does (the ImageNet EfficientNet-Lite0 backbone of a fresh
student, OpenVINO features graph, float16 store on disk); then the real
:func:`~imgsent.distill.dedup.find_near_duplicates` runs on the stored rows with the exact search
and with the FAISS index at 8-bit codes (``memory_gb: 4``) and 4-bit codes (a tiny budget), at
the default cells and at fewer probes. Reported per setting: the linked pairs found against the
exact search's (recall), pairs the exact search does not have (extra), candidates re-checked,
and whether the kept set is the exact search's.

It also reports the distance of each planted variant to its photo, and of each photo to its
nearest other photo: what a threshold means for this embedding. The comparison runs at the
paper's 0.15 and at a second threshold (``--thresholds``) that links most planted reposts, so
recall is measured on more than a handful of pairs.

Results go to ``benchmarks/results/dedup_real.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, SHARED_DATA, load_average, write_json

PERCENTILES = (0, 10, 50, 90, 100)


def planted_images(root: Path) -> tuple[list[str], dict[str, str]]:
    """The real photos and their planted variants; returns the paths and ``{variant: kind}``."""
    from PIL import Image

    photos = sorted((SHARED_DATA / "twitter1-dev" / "images").glob("*.jpg"))
    if not photos:
        raise SystemExit(f"No photos in {SHARED_DATA / 'twitter1-dev' / 'images'}: this benchmark needs the shared data.")
    root.mkdir(parents=True, exist_ok=True)
    paths, kinds = [str(p) for p in photos], {}
    for i, photo in enumerate(photos):
        if i % 6 not in (0, 3):
            continue
        image = Image.open(photo).convert("RGB")
        w, h = image.size
        if i % 6 == 0:
            out, kind = root / f"near-{photo.stem}.jpg", "near duplicate"
            image.resize((max(1, w // 2), max(1, h // 2)), Image.BICUBIC).save(out, quality=60)
        else:
            out, kind = root / f"miss-{photo.stem}.jpg", "near miss"
            image.crop((int(0.15 * w), int(0.15 * h), int(0.85 * w), int(0.85 * h))).save(out, quality=90)
        paths.append(str(out))
        kinds[str(out)] = kind
    return paths, kinds


def run(root: Path, thresholds: list[float]) -> dict[str, Any]:
    import numpy as np

    from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
    from imgsent.distill.backbones import load_imagenet_backbone
    from imgsent.distill.embeddings import build_store, store_key
    from imgsent.distill.features import engine_embedder
    from imgsent.models.sentiment import SentimentModel

    paths, kinds = planted_images(root / "variants")
    preprocess = PreprocessConfig(image_size=224, resize_mode="squash", interpolation="bicubic")  # the recipe's default
    model = SentimentModel(ModelConfig(ArchitectureConfig("efficientnet_lite0", {}), preprocess))
    load_imagenet_backbone(model)
    embed, key = engine_embedder(model, backend="auto")
    start = time.perf_counter()
    store = build_store(paths, embed, root / "store", key=store_key(paths, key))
    embed_seconds = time.perf_counter() - start
    rows = store.rows(np.arange(store.n))
    where = {p: i for i, p in enumerate(paths)}
    source = {Path(p).stem: i for i, p in enumerate(paths) if p not in kinds}
    distances: dict[str, Any] = {}
    for kind in sorted(set(kinds.values())):
        d = [float(np.linalg.norm(rows[where[p]] - rows[source[Path(p).stem.split("-", 1)[1]]]))
             for p, k in kinds.items() if k == kind]
        distances[kind] = dict(zip(map(str, PERCENTILES), np.percentile(d, PERCENTILES).round(3).tolist()))
    photos = rows[[i for p, i in where.items() if p not in kinds]]
    gram = photos @ photos.T
    np.fill_diagonal(gram, -1.0)
    nearest = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * gram.max(axis=1)))
    distances["nearest other photo"] = dict(zip(map(str, PERCENTILES), np.percentile(nearest, PERCENTILES).round(3).tolist()))
    out = {"images": len(paths), "planted": {k: list(kinds.values()).count(k) for k in set(kinds.values())},
           "embed_seconds": embed_seconds, "distance_percentiles": distances, "thresholds": []}
    for threshold in thresholds:
        out["thresholds"].append(compare(paths, kinds, embed, key, root / "store", threshold))
    out["load_average_1min"] = load_average()[0]
    return out


def compare(paths: list[str], kinds: dict[str, str], embed: Any, key: str, store: Path, threshold: float) -> dict[str, Any]:
    """The exact search against the FAISS settings at one threshold, on the stored rows."""
    import imgsent.distill.dedup as dedup
    from imgsent.distill.ann import DEFAULT_MEMORY_GB

    exact = dedup.find_near_duplicates(paths, embed, threshold=threshold, search="exact", workdir=store, model_key=key)
    truth = {(a, b) for a, b, _ in exact.links}
    removed = {kind: sum(1 for d in exact.removed if kinds.get(d.path) == kind) for kind in set(kinds.values())}
    removed["unplanted"] = sum(1 for d in exact.removed if d.path not in kinds)
    settings = [("SQ8, nprobe 16", DEFAULT_MEMORY_GB, 16), ("SQ4, nprobe 16", 0.001, 16),
                ("SQ8, nprobe 2", DEFAULT_MEMORY_GB, 2), ("SQ4, nprobe 2", 0.001, 2)]
    rows = []
    original = dedup.faiss_candidates
    for name, memory_gb, nprobe in settings:
        counted = {"candidates": 0}

        def counting(*args: Any, **kwargs: Any):  # noqa: ANN202
            for i, j in original(*args, **kwargs):
                counted["candidates"] += len(i)
                yield i, j

        dedup.faiss_candidates = counting
        try:
            start = time.perf_counter()
            report = dedup.find_near_duplicates(paths, embed, threshold=threshold, search="faiss", workdir=store,
                                                model_key=key, memory_gb=memory_gb, nprobe=nprobe)
            seconds = time.perf_counter() - start
        finally:
            dedup.faiss_candidates = original
        found = {(a, b) for a, b, _ in report.links}
        rows.append({"setting": name, "search": report.search, "pairs_found": len(found & truth),
                     "recall": len(found & truth) / max(1, len(truth)), "extra_pairs": len(found - truth),
                     "candidates": counted["candidates"], "same_kept": report.kept == exact.kept, "seconds": seconds})
        print(json.dumps({"threshold": threshold, **rows[-1]}), flush=True)
    return {"threshold": threshold, "exact_pairs": len(truth), "removed_by_exact_search": removed, "faiss": rows}


def table(result: dict[str, Any]) -> str:
    """The comparison as the markdown table of ``docs/benchmarks.md``."""
    lines = ["| threshold | exact search: linked pairs (reposts, crops, other removed) | index | pairs found (recall) | extra pairs | candidates re-checked | same kept set |",
             "|---|---|---|---|---|---|---|"]
    for t in result["thresholds"]:
        removed = t["removed_by_exact_search"]
        exact = (f"{t['exact_pairs']} ({removed.get('near duplicate', 0)} of {result['planted']['near duplicate']}, "
                 f"{removed.get('near miss', 0)} of {result['planted']['near miss']}, {removed['unplanted']})")
        for row in t["faiss"]:
            lines.append(f"| {t['threshold']} | {exact} | {row['setting']} | {row['pairs_found']} ({row['recall']:.3f}) | "
                         f"{row['extra_pairs']} | {row['candidates']:,} | {'yes' if row['same_kept'] else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/imgsent-dedup-real"))
    parser.add_argument("--thresholds", default="0.15,0.4")
    args = parser.parse_args()
    result = run(args.root, [float(t) for t in args.thresholds.split(",")])
    write_json(REPO / "benchmarks" / "results" / "dedup_real.json", result)
    print(json.dumps(result, indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
