"""Engines benchmark: forward table, parity, start-up, classify against the naive loop, bf16 agreement, memory.

Every ratio is measured within one run, so it compares like with like on a busy machine::

    python -m benchmarks.engines --images 3000 --skip vit bf16 startup memory   # ~3 min on 2 cores
    python -m benchmarks.engines --tiny                                         # seconds: a check of the harness

Results are merged into ``benchmarks/results/engines.json``: the forward table and the classify
comparison of each run are added under ``runs``; start-up, bf16 agreement and memory replace
their earlier entries.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import endtoend
from benchmarks.common import (
    DEFAULT,
    REPO,
    TINY,
    VIT_B16,
    ModelSpec,
    load_average,
    machine_info,
    make_jpegs,
    model_folder,
    repeat_folder,
    write_json,
)

CELLS = [("torch", "float32"), ("torch", "bfloat16"), ("onnxruntime", "float32"), ("openvino", "float32"), ("openvino", "bfloat16")]


def forward_table(folder: Path, batches: tuple[int, ...], min_seconds: float) -> list[dict[str, Any]]:
    """img/s of every engine x dtype x batch on random pixels, and max |Δ| of probabilities vs torch float32."""
    import torch

    from imgsent.engines import load_engine
    from imgsent.models.sentiment import SentimentModel

    model = SentimentModel.from_folder(folder)
    size = model.config.preprocess.image_size
    probe = torch.randint(0, 256, (8, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    rows, reference = [], None
    for backend, dtype in CELLS:
        engine = load_engine(SentimentModel.from_folder(folder), backend=backend, device=torch.device("cpu"),
                             dtype=getattr(torch, dtype))
        probs = engine.forward(probe)
        reference = probs if reference is None else reference
        delta = float((probs - reference).abs().max())
        agree = float((probs.argmax(-1) == reference.argmax(-1)).float().mean())
        for batch in batches:
            rate = _images_per_second(engine, batch, size, min_seconds)
            rows.append({"backend": backend, "dtype": dtype, "batch": batch, "images_per_second": rate,
                         "max_abs_diff_vs_torch_fp32": delta, "label_agreement_vs_torch_fp32": agree, "load": load_average()[0]})
            print(f"  {backend:12s} {dtype:9s} b{batch:<3d} {rows[-1]['images_per_second']:8.1f} img/s  |Δ| {delta:.1e}", flush=True)
        del engine
    return rows


def _classify_cmd(args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "imgsent", *args], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def startup(base: Path | None, repeats: int) -> dict[str, Any]:
    """Wall clock of ``imgsent classify examples/images`` (6 photos), this tree and optionally a base tree, alternated."""
    out: dict[str, Any] = {"runs": {}}
    trees = {"after": REPO} if base is None else {"before": base, "after": REPO}
    with tempfile.TemporaryDirectory() as tmp:
        _classify_cmd(["classify", str(REPO / "examples" / "images"), "-o", f"{tmp}/warm.csv"])  # fills the export cache
        for _ in range(repeats):
            for name, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(tree)}
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "imgsent", "classify", str(REPO / "examples" / "images"), "-o", f"{tmp}/o.csv", "--overwrite"],
                               cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                out["runs"].setdefault(name, []).append(time.perf_counter() - start)
    out["median_seconds"] = {k: sorted(v)[len(v) // 2] for k, v in out["runs"].items()}
    return out


def naive_labels(folder: Path, paths: list[str]) -> tuple[float, dict[str, str]]:
    """The naive loop (PIL open -> RGB -> resize -> torch float32, batch 1), with its labels; img/s incl. model load."""
    import numpy as np
    import torch
    from PIL import Image

    from imgsent.config import LABELS
    from imgsent.models.sentiment import SentimentModel
    from imgsent.transforms import normalize

    start = time.perf_counter()
    model = SentimentModel.from_folder(folder).eval()
    cfg = model.config.preprocess
    resample = getattr(Image.Resampling, cfg.interpolation.upper())
    labels = {}
    with torch.inference_mode():
        for path in paths:
            image = Image.open(path).convert("RGB").resize((cfg.image_size, cfg.image_size), resample)
            pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None]
            labels[path] = LABELS[int(model(normalize(pixels, cfg)).argmax(-1))]
    return len(paths) / (time.perf_counter() - start), labels


def classify_vs_naive(folder: Path, images: Path, paths: list[str], candidates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``imgsent classify`` with its defaults (wall clock, start-up included) against the naive loop.

    The decode ceiling and the forward pass of every ``candidates`` cell (each float32 engine at
    its best batch in the forward table) are re-timed right after the classify run, and the
    fastest is the forward ceiling, so the shared-core bound is taken at the same moment: this
    machine's speed drifts by 20-40% within minutes, enough to rank the engines wrongly in a table
    taken minutes earlier.
    """
    from benchmarks.ceilings import decode_ceiling

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.csv"
        wall = _classify_cmd(["classify", str(images), "-o", str(out), "--model", str(folder)])
        with out.open(encoding="utf-8") as fh:
            rows = {r["path"] if "path" in r else r[next(iter(r))]: r["label"] for r in csv.DictReader(fh)}
    result: dict[str, Any] = {"images": len(paths), "classify_wall_images_per_second": len(paths) / wall}
    result["decode_ceiling"] = decode_ceiling(paths[: min(len(paths), 600)], image_size=224)
    if candidates:
        retimed = [{**cell, "images_per_second": forward_rate(folder, cell["backend"], cell["batch"], 3.0)} for cell in candidates]
        result["forward_retimed"] = retimed
        result["best_forward"] = max(retimed, key=lambda cell: cell["images_per_second"])
        bound = 1 / (1 / result["decode_ceiling"] + 1 / result["best_forward"]["images_per_second"])
        result.update(shared_core_bound=bound, fraction_of_bound=result["classify_wall_images_per_second"] / bound)
    naive_rate, naive = naive_labels(folder, paths)
    keyed = {str(Path(k).resolve()): v for k, v in rows.items()}
    agree = sum(keyed.get(str(Path(p).resolve())) == naive[p] for p in paths) / len(paths)
    return {**result, "naive_images_per_second": naive_rate, "ratio": result["classify_wall_images_per_second"] / naive_rate,
            "label_agreement": agree, "load": load_average()[0]}


def forward_rate(folder: Path, backend: str, batch: int, seconds: float) -> float:
    """img/s of one engine's float32 forward pass on random pixels, all cores."""
    import torch

    from imgsent.engines import load_engine
    from imgsent.models.sentiment import SentimentModel

    model = SentimentModel.from_folder(folder)
    engine = load_engine(model, backend=backend, device=torch.device("cpu"), dtype=torch.float32)
    return _images_per_second(engine, batch, model.config.preprocess.image_size, seconds)


def _images_per_second(engine: Any, batch: int, size: int, min_seconds: float) -> float:
    """Forward passes of one random uint8 batch for at least ``min_seconds`` (and twice), after one warm-up."""
    import torch

    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    engine.forward(x)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds or calls < 2:
        engine.forward(x)
        calls += 1
    return calls * batch / elapsed


def best_float32(forward: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each float32 engine's fastest cell of a forward table."""
    best: dict[str, dict[str, Any]] = {}
    for row in forward:
        if row["dtype"] == "float32" and row["images_per_second"] > best.get(row["backend"], {}).get("images_per_second", 0.0):
            best[row["backend"]] = row
    return list(best.values())


def bf16_agreement(folder: Path, paths: list[str]) -> dict[str, Any]:
    """float32 against bfloat16 (torch and OpenVINO) on the same decoded images."""
    import torch

    from imgsent.data import iter_batches
    from imgsent.engines import load_engine
    from imgsent.models.sentiment import SentimentModel

    cfg = SentimentModel.from_folder(folder).config.preprocess
    batches = [b.pixels for b in iter_batches(paths, cfg, batch_size=32, workers=1)]
    probs = {}
    for backend, dtype in [("torch", "float32"), ("torch", "bfloat16"), ("openvino", "bfloat16")]:
        engine = load_engine(SentimentModel.from_folder(folder), backend=backend, device=torch.device("cpu"), dtype=getattr(torch, dtype))
        probs[f"{backend} {dtype}"] = torch.cat([engine.forward(b) for b in batches])
    ref = probs.pop("torch float32")
    return {"images": int(ref.shape[0]), **{k: {"label_agreement": float((v.argmax(-1) == ref.argmax(-1)).float().mean()),
            "labels_changed": int((v.argmax(-1) != ref.argmax(-1)).sum()), "max_probability_gap": float((v - ref).abs().max())}
            for k, v in probs.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engines", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--bf16-images", type=int, default=None, help="Limit the bf16 check to the first N twitter1-dev photos.")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="Timing window per forward cell.")
    parser.add_argument("--base", type=Path, help="A checkout of the previous release, for start-up before/after.")
    parser.add_argument("--memory-images", type=int, default=20000, help="Images streamed through the CLI for the memory check.")
    parser.add_argument("--skip", nargs="*", default=[], choices=["forward", "vit", "startup", "classify", "bf16", "memory"])
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("IMGSENT_BENCH_DIR", "/tmp/imgsent-bench")))
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "engines.json")
    args = parser.parse_args(argv)
    specs: list[ModelSpec] = [TINY] if args.tiny else [DEFAULT, VIT_B16]
    min_seconds = 0.2 if args.tiny else args.min_seconds
    run: dict[str, Any] = {"machine": machine_info(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "forward": {}}
    results: dict[str, Any] = {}
    for spec in specs:
        if "forward" in args.skip or (spec is VIT_B16 and "vit" in args.skip):
            continue
        print(f"forward: {spec.name}", flush=True)
        batches = (1, 8, 32) if spec is not VIT_B16 else (8,)
        run["forward"][spec.name] = forward_table(model_folder(spec, args.workdir), batches, min_seconds)
    folder = model_folder(specs[0], args.workdir)
    if "startup" not in args.skip:
        results["startup"] = startup(args.base, 1 if args.tiny else 3)
        print("startup:", results["startup"]["median_seconds"], flush=True)
    count = 20 if args.tiny else args.images
    if not {"classify", "memory"} <= set(args.skip):
        images = make_jpegs(args.workdir / f"jpegs-{count}", count)
    if "classify" not in args.skip:
        paths = sorted(str(p) for p in images.glob("*.jpg"))
        candidates = best_float32(run["forward"].get(specs[0].name, []))
        run["classify"] = classify_vs_naive(folder, images, paths, candidates)
        print("classify:", run["classify"], flush=True)
    if "memory" not in args.skip:
        total = 200 if args.tiny else args.memory_images
        results["memory_stream"] = memory_stream(folder, repeat_folder(images, args.workdir / f"stream-{total}", total))
        print("memory:", results["memory_stream"], flush=True)
    shared = REPO.parent / "shared" / "data" / "twitter1-dev" / "images"
    if "bf16" not in args.skip and shared.is_dir() and not args.tiny:
        results["bf16"] = bf16_agreement(folder, sorted(str(p) for p in shared.glob("*.jpg"))[: args.bf16_images])
        print("bf16:", results["bf16"], flush=True)
    merged = merge_results(args.output, results)
    if run["forward"] or "classify" in run:
        merged["runs"][f"run{len(merged['runs']) + 1}"] = run
    write_json(args.output, merged)
    return 0


def memory_stream(folder: Path, stream: Path) -> dict[str, Any]:
    """PSS of the CLI's process tree (main process and decoding workers) over a long stream, sampled every second."""
    result = endtoend.run_classify(endtoend.STOCK, stream, folder, interval=1.0, keep_samples=True)
    return {**endtoend.memory_flatness(result), "images": result.images, "images_per_second": result.images_per_second,
            "wall_images_per_second": result.wall_images_per_second}


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def merge_results(path: Path, results: dict[str, Any]) -> dict[str, Any]:
    """The results already in ``path`` with this run's added: new runs appended, other entries replaced."""
    merged = _read(path)
    merged["runs"] = {**merged.get("runs", {}), **results.pop("runs", {})}
    merged.update(results)
    return merged


if __name__ == "__main__":
    raise SystemExit(main())
