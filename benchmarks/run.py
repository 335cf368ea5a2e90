"""Run every imgsent benchmark in one go and write the results (JSON and a Markdown table).

Usage::

    python -m benchmarks.run                 # the full run (about 35 min on 2 quiet cores)
    python -m benchmarks.run --quick         # 200 images, 1 repeat: checks the harness
    python -m benchmarks.run --update-docs   # also rewrite the tables in benchmarks/README.md and docs/benchmarks.md

Everything is measured in the same run, so the ratios compare like with like; each repeat
measures every figure once, and ratios are taken between figures of the same repeat.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import baselines, ceilings, endtoend
from benchmarks.common import (
    cores,
    DEFAULT,
    REPO,
    TINY,
    VIT_B16,
    ModelSpec,
    Summary,
    is_bundled,
    jpeg_paths,
    load_average,
    machine_info,
    make_jpegs,
    model_folder,
    repeat_folder,
    shared_images,
    write_json,
)
from benchmarks.endtoend import STOCK, TUNED, Variant


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    images: int = 2000
    image_size: tuple[int, int] = (1024, 768)
    vit_images: int = 100
    naive_images: int = 200
    pipeline_images: int = 100
    variant_images: int = 400
    memory_images: int = 20_000
    repeats: int = 3
    min_seconds: float = 2.0
    cnn_batches: tuple[int, ...] = (1, 8, 16, 32, 64, 128)
    vit_batches: tuple[int, ...] = (1, 8, 32, 64)
    variants: bool = True


FULL = Sizes()
QUICK = Sizes(images=200, vit_images=24, naive_images=40, pipeline_images=24, variant_images=100,
              memory_images=2000, repeats=1, min_seconds=0.5, cnn_batches=(1, 16, 32), vit_batches=(1, 16))
TINY_SIZES = Sizes(images=12, image_size=(96, 64), vit_images=8, naive_images=4, pipeline_images=4, variant_images=8,
                   memory_images=24, repeats=1, min_seconds=0.0, cnn_batches=(1, 4), vit_batches=(1, 4), variants=False)

DEFAULT_VARIANTS = (
    STOCK,
    Variant("+ channels-last (float32)", dtype="float32", channels_last=True),
    Variant("+ bf16 weights if native", dtype="auto-bf16"),
    Variant("+ bf16 + channels-last", dtype="auto-bf16", channels_last=True),
    Variant("+ bf16 + channels-last + threads = cores - workers (tuned)", dtype="auto-bf16", channels_last=True,
            threads="split"),
    Variant("tuned, workers=2, threads=1", workers=2, threads=1, dtype="auto-bf16", channels_last=True),
    Variant("tuned, workers=0, threads=2", workers=0, threads=2, dtype="auto-bf16", channels_last=True),
)
VIT_VARIANTS = (
    Variant("ViT bf16, workers=1, threads=1", workers=1, threads=1, dtype="auto-bf16", channels_last=True),
    Variant("ViT bf16, workers=1, threads=2", workers=1, threads=2, dtype="auto-bf16", channels_last=True),
    Variant("ViT bf16, workers=0, threads=2", workers=0, threads=2, dtype="auto-bf16", channels_last=True),
)


def log(message: str) -> None:
    load = load_average()[0]
    print(f"[{time.strftime('%H:%M:%S')} load {load:.2f}] {message}", file=sys.stderr, flush=True)


def _thread_counts() -> list[int]:
    return sorted({1, cores()})


def _sweep(folder: Path, spec: ModelSpec, sizes: Sizes, batches: tuple[int, ...]) -> list[dict[str, Any]]:
    dtypes = ["float32", "bfloat16"]
    layouts = [False, True] if spec.arch.startswith("efficientnet") else [False]
    return ceilings.forward_sweep(folder, batch_sizes=list(batches), dtypes=dtypes, channels_last=layouts,
                                  min_seconds=sizes.min_seconds)


def _best(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return max(rows, key=lambda r: r["images_per_second"])


def _forward_at(folder: Path, best: dict[str, Any], sizes: Sizes) -> float:
    row = ceilings.forward_sweep(folder, batch_sizes=[best["batch_size"]], dtypes=[best["dtype"]],
                                 channels_last=[best["channels_last"]], min_seconds=sizes.min_seconds,
                                 threads=[best["threads"]])[0]
    return float(row["images_per_second"])


def bf16_agreement(folder: Path, paths: list[str], labels: dict[str, str] | None) -> dict[str, Any]:
    """fp32 against bf16 weights on the same images: label agreement, probability gap, accuracy."""
    import torch

    from imgsent.models.sentiment import SentimentModel
    from imgsent.predictor import Predictor

    out: dict[str, Any] = {"images": len(paths)}
    probs = {}
    for dtype in ("float32", "bfloat16"):
        predictor = Predictor(SentimentModel.from_folder(folder), device="cpu", dtype=dtype)
        preds = predictor.predict(paths, batch_size=32, workers=1)
        probs[dtype] = (preds, torch.tensor([[p.negative, p.neutral, p.positive] for p in preds]))
    (p32, t32), (p16, t16) = probs["float32"], probs["bfloat16"]
    out["label_agreement"] = sum(a.label == b.label for a, b in zip(p32, p16)) / len(paths)
    out["max_probability_gap"] = float((t32 - t16).abs().max())
    if labels:
        from imgsent.outputs import label_from_probabilities

        for dtype, (preds, _) in probs.items():
            scored = [(label_from_probabilities((p.negative, p.neutral, p.positive), binary=True),
                       labels[Path(p.source).name]) for p in preds if Path(p.source).name in labels]
            out[f"binary_accuracy_{dtype}"] = sum(a == b for a, b in scored) / max(1, len(scored))
    return out


def _shared_labels(folder: Path) -> dict[str, str] | None:
    import csv

    path = folder.parent / "labels.csv"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as fh:
        return {Path(row["image"]).name: row["label"] for row in csv.DictReader(fh)}


def run(sizes: Sizes, workdir: Path, *, tiny: bool = False, compile_model: bool = False,
        skip_pipeline: bool = False) -> dict[str, Any]:
    """Measure everything; returns the results record (see README for the fields)."""
    results: dict[str, Any] = {"machine": machine_info(), "sizes": dataclasses.asdict(sizes)}
    cnn_spec, vit_spec = (TINY, TINY) if tiny else (DEFAULT, VIT_B16)
    log("data")
    synth = make_jpegs(workdir / f"jpegs-{sizes.images}-{sizes.image_size[0]}x{sizes.image_size[1]}", sizes.images,
                       size=sizes.image_size)
    paths = jpeg_paths(synth)
    vit_dir = repeat_folder(synth, workdir / f"subset-{sizes.vit_images}-of-{synth.name}", sizes.vit_images)
    variant_dir = repeat_folder(synth, workdir / f"subset-{sizes.variant_images}-of-{synth.name}", sizes.variant_images)
    cnn_folder, vit_folder = model_folder(cnn_spec, workdir), model_folder(vit_spec, workdir)
    results["models"] = {"default": {"folder": str(cnn_folder), "bundled": is_bundled(cnn_folder), "spec": cnn_spec},
                         "vit_b16": {"folder": str(vit_folder), "spec": vit_spec}}

    log("forward sweeps (once, to find the best batch size, dtype and layout)")
    sweep_cnn = _sweep(cnn_folder, cnn_spec, sizes, sizes.cnn_batches)
    sweep_vit = _sweep(vit_folder, vit_spec, sizes, sizes.vit_batches)
    results["forward_sweep"] = {"default": sweep_cnn, "vit_b16": sweep_vit}
    best_cnn, best_vit = _best(sweep_cnn), _best(sweep_vit)

    rep: dict[str, list[float]] = {}
    extra: dict[str, list[float]] = {}
    vit_extra: dict[str, list[float]] = {}
    extra_base: dict[str, list[float]] = {}

    def add(key: str, value: float, store: dict[str, list[float]] = rep) -> None:
        store.setdefault(key, []).append(value)

    loads: list[float] = []
    for r in range(sizes.repeats):
        log(f"repeat {r + 1}/{sizes.repeats}")
        loads.append(load_average()[0])
        add("decode_ceiling", ceilings.decode_ceiling(paths, image_size=cnn_spec.image_size))
        for key, variant in (("default_stock", STOCK), ("default_tuned", TUNED)):
            res = endtoend.run_classify(variant, synth, cnn_folder)
            add(f"{key}", res.images_per_second)
            add(f"{key}_wall", res.wall_images_per_second)
            add(f"{key}_peak_rss_mb", res.peak_rss_mb)
            add(f"{key}_peak_pss_mb", res.peak_pss_mb)
        naive = {t: baselines.naive_loop(cnn_folder, paths[: sizes.naive_images], threads=t) for t in _thread_counts()}
        add("default_naive_default_threads", naive[cores()], extra_base)
        add("default_naive", max(naive.values()))  # the baseline at its best thread count
        add("default_forward_ceiling", _forward_at(cnn_folder, best_cnn, sizes))
        for key, variant in (("vit_stock", STOCK), ("vit_tuned", TUNED)):
            res = endtoend.run_classify(variant, vit_dir, vit_folder)
            add(f"{key}", res.images_per_second)
            add(f"{key}_wall", res.wall_images_per_second)
            add(f"{key}_peak_rss_mb", res.peak_rss_mb)
            add(f"{key}_peak_pss_mb", res.peak_pss_mb)
        if not skip_pipeline:
            overrides = dict(vit_spec.arch_args)
            overrides.pop("image_size", None)
            pipe = {t: baselines.hf_pipeline(paths[: sizes.pipeline_images], batch_size=32, threads=t,
                                             image_size=vit_spec.image_size, **overrides) for t in _thread_counts()}
            add("vit_pipeline_default_threads", pipe[cores()], extra_base)
            add("vit_pipeline", max(pipe.values()))
        add("vit_forward_ceiling", _forward_at(vit_folder, best_vit, sizes))
        for variant in DEFAULT_VARIANTS if sizes.variants else ():
            add(variant.name, endtoend.run_classify(variant, variant_dir, cnn_folder).images_per_second, extra)
        for variant in VIT_VARIANTS if sizes.variants else ():
            add(variant.name, endtoend.run_classify(variant, vit_dir, vit_folder).images_per_second, vit_extra)
    results["load_average_during_repeats"] = loads
    results["repeats"] = rep
    results["variants_default_model"] = extra
    results["variants_vit_b16"] = vit_extra
    results["baselines_default_threads"] = extra_base

    log("decode methods")
    results["decode_methods"] = {m: ceilings.decode_ceiling(paths, image_size=cnn_spec.image_size, method=m)
                                 for m in ceilings.DECODE_METHODS}

    real = None if tiny else shared_images()
    if real is not None:
        log(f"real images: {real}")
        results["real_images"] = {
            "folder": str(real),
            "count": len(jpeg_paths(real)),
            "decode_ceiling": ceilings.decode_ceiling(jpeg_paths(real), image_size=cnn_spec.image_size),
            "default_stock": endtoend.run_classify(STOCK, real, cnn_folder).images_per_second,
            "default_tuned": endtoend.run_classify(TUNED, real, cnn_folder).images_per_second,
        }
    log("bf16 against float32 predictions")
    check_paths = jpeg_paths(real)[:200] if real is not None else paths[:64]
    labels = _shared_labels(real) if real is not None and is_bundled(cnn_folder) else None
    results["bf16_check"] = {"default": bf16_agreement(cnn_folder, check_paths, labels),
                             "vit_b16": bf16_agreement(vit_folder, check_paths[:64], None)}
    if compile_model:
        log("torch.compile")
        results["compile"] = {
            "default": ceilings.compiled_forward(cnn_folder, batch_size=best_cnn["batch_size"], dtype=best_cnn["dtype"],
                                                 channels_last=best_cnn["channels_last"], min_seconds=sizes.min_seconds)}
    log(f"memory over a stream of {sizes.memory_images} images (tuned CLI)")
    stream_dir = repeat_folder(synth, workdir / f"stream-{sizes.memory_images}-of-{synth.name}", sizes.memory_images)
    long_run = endtoend.run_classify(TUNED, stream_dir, cnn_folder, interval=1.0, keep_samples=True)
    results["memory_stream"] = {**endtoend.memory_flatness(long_run), "images": long_run.images,
                                "images_per_second": long_run.images_per_second, "samples": long_run.memory}
    results["summary"] = summarise(rep, results)
    results["machine"]["load_average_end"] = load_average()
    log("done")
    return results


def summarise(rep: dict[str, list[float]], results: dict[str, Any]) -> dict[str, Any]:
    """Medians and spreads of every figure, and the ratios taken repeat by repeat."""
    from benchmarks.common import ratio

    out: dict[str, Any] = {key: Summary.of(values) for key, values in rep.items()}
    n = len(rep["decode_ceiling"])
    for model in ("default", "vit"):
        fwd = rep[f"{model}_forward_ceiling"]
        dec = rep["decode_ceiling"]
        smaller = [min(a, b) for a, b in zip(dec, fwd)]
        shared = [1 / (1 / a + 1 / b) for a, b in zip(dec, fwd)]  # both halves on the same cores, one after the other
        out[f"{model}_min_ceiling"] = Summary.of(smaller)
        out[f"{model}_shared_core_bound"] = Summary.of(shared)
        for flavour in ("stock", "tuned"):
            e2e = rep[f"{model}_{flavour}"]
            out[f"ratio_{model}_{flavour}_over_min_ceiling"] = ratio(e2e, smaller)
            out[f"ratio_{model}_{flavour}_over_shared_bound"] = ratio(e2e, shared)
            if model == "default":
                out[f"ratio_default_{flavour}_over_naive"] = ratio(e2e, rep["default_naive"])
            elif "vit_pipeline" in rep:
                out[f"ratio_vit_{flavour}_over_pipeline"] = ratio(e2e, rep["vit_pipeline"])
    out["repeats"] = n
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 images, 1 repeat: a check of the harness, not numbers.")
    parser.add_argument("--tiny", action="store_true", help="Tiny model and images, seconds (used by the tests).")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="Also time torch.compile on the default model.")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("IMGSENT_BENCH_DIR", "/tmp/imgsent-bench")))
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "latest.json")
    parser.add_argument("--update-docs", action="store_true", help="Rewrite the results tables in the README and docs.")
    args = parser.parse_args(argv)
    sizes = TINY_SIZES if args.tiny else QUICK if args.quick else FULL
    if args.repeats:
        sizes = dataclasses.replace(sizes, repeats=args.repeats)
    results = run(sizes, args.workdir, tiny=args.tiny, compile_model=args.compile, skip_pipeline=args.skip_pipeline)
    results["command"] = " ".join(["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])])
    write_json(args.output, results)
    from benchmarks.report import markdown, update_docs

    table = markdown(results)
    args.output.with_suffix(".md").write_text(table)
    print(table)
    if args.update_docs:
        update_docs(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
