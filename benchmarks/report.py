"""Turn a results record into Markdown tables, and put them into the README and the docs page."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, Summary

START, END = "<!-- results:start -->", "<!-- results:end -->"
DOC_FILES = (REPO / "benchmarks" / "README.md", REPO / "docs" / "benchmarks.md")


def _s(value: Any) -> Summary:
    return value if isinstance(value, Summary) else Summary(**value)


def _fmt(summary: Any, digits: int = 1, unit: str = "") -> str:
    return _s(summary).text(digits) + unit


def markdown(results: dict[str, Any]) -> str:
    """The results tables: machine, throughput, ratios, variants, decode methods, bf16 check, memory."""
    m, s, sizes = results["machine"], results["summary"], results["sizes"]
    loads = results.get("load_average_during_repeats", [])
    lines = [
        f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores (native bf16: {'yes' if m['fast_bf16'] else 'no'}), "
        f"torch {m['torch']} ({m['torch_threads']} threads), torchvision {m['torchvision']}, "
        f"transformers {m['transformers']}, Pillow {m['pillow']}, Python {m['python']}. "
        f"Load average (1 min) at the start of each repeat: {', '.join(f'{x:.2f}' for x in loads)}. "
        f"{s['repeats']} repeat(s); figures are median (min–max) over repeats; ratios are taken repeat by repeat.",
        "",
        f"Data: {sizes['images']} generated {sizes['image_size'][0]}×{sizes['image_size'][1]} JPEGs (quality 90). "
        f"Default model: {'bundled weights' if results['models']['default']['bundled'] else 'random weights, same architecture'}; "
        "ViT-B/16 224 px: random weights.",
        "",
        "| figure | default model (img/s) | ViT-B/16 224 (img/s) |",
        "|---|---|---|",
        f"| `imgsent classify`, stock defaults | {_fmt(s['default_stock'])} | {_fmt(s['vit_stock'])} |",
        f"| `imgsent classify`, tuned (bf16 if native, channels-last, threads = cores − workers for light models) | {_fmt(s['default_tuned'])} | {_fmt(s['vit_tuned'])} |",
        f"| same, wall clock incl. start-up (stock / tuned) | {_fmt(s['default_stock_wall'])} / {_fmt(s['default_tuned_wall'])}"
        f" | {_fmt(s['vit_stock_wall'])} / {_fmt(s['vit_tuned_wall'])} |",
        f"| naive loop (PIL → resize → batch of 1, float32), best of 1 or all threads | {_fmt(s['default_naive'])} | – |",
        f"| `transformers.pipeline`, batch_size=32, float32, best of 1 or all threads | – | "
        f"{_fmt(s['vit_pipeline']) if 'vit_pipeline' in s else 'skipped'} |",
        f"| ceiling: decode + resize alone, all cores | {_fmt(s['decode_ceiling'])} | {_fmt(s['decode_ceiling'])} |",
        f"| ceiling: forward alone, best batch/dtype/layout/threads | {_fmt(s['default_forward_ceiling'])} | {_fmt(s['vit_forward_ceiling'])} |",
        f"| smaller ceiling | {_fmt(s['default_min_ceiling'])} | {_fmt(s['vit_min_ceiling'])} |",
        f"| shared-core bound 1/(1/decode + 1/forward) | {_fmt(s['default_shared_core_bound'])} | {_fmt(s['vit_shared_core_bound'])} |",
        f"| peak memory, process tree PSS (stock / tuned) | {_fmt(s['default_stock_peak_pss_mb'], 0, ' MB')} / "
        f"{_fmt(s['default_tuned_peak_pss_mb'], 0, ' MB')} | {_fmt(s['vit_stock_peak_pss_mb'], 0, ' MB')} / "
        f"{_fmt(s['vit_tuned_peak_pss_mb'], 0, ' MB')} |",
        f"| peak memory, process tree RSS sum (stock / tuned) | {_fmt(s['default_stock_peak_rss_mb'], 0, ' MB')} / "
        f"{_fmt(s['default_tuned_peak_rss_mb'], 0, ' MB')} | {_fmt(s['vit_stock_peak_rss_mb'], 0, ' MB')} / "
        f"{_fmt(s['vit_tuned_peak_rss_mb'], 0, ' MB')} |",
        "",
        "| ratio | stock | tuned | target |",
        "|---|---|---|---|",
        f"| default: imgsent / naive loop | {_fmt(s['ratio_default_stock_over_naive'], 2)} | "
        f"{_fmt(s['ratio_default_tuned_over_naive'], 2)} | ≥ 3 |",
    ]
    if "ratio_vit_stock_over_pipeline" in s:
        lines.append(f"| ViT-B/16: imgsent / pipeline | {_fmt(s['ratio_vit_stock_over_pipeline'], 2)} | "
                     f"{_fmt(s['ratio_vit_tuned_over_pipeline'], 2)} | ≥ 2 |")
    for model, label in (("default", "default"), ("vit", "ViT-B/16")):
        lines.append(f"| {label}: imgsent / smaller ceiling | {_fmt(s[f'ratio_{model}_stock_over_min_ceiling'], 2)} | "
                     f"{_fmt(s[f'ratio_{model}_tuned_over_min_ceiling'], 2)} | ≥ 0.9 |")
        lines.append(f"| {label}: imgsent / shared-core bound | {_fmt(s[f'ratio_{model}_stock_over_shared_bound'], 2)} | "
                     f"{_fmt(s[f'ratio_{model}_tuned_over_shared_bound'], 2)} | – |")
    lines += ["", f"Default model, {sizes['variant_images']} images, `imgsent classify` variants (img/s):", "",
              "| variant | img/s |", "|---|---|"]
    lines += [f"| {name} | {Summary.of(vals).text(1)} |" for name, vals in results["variants_default_model"].items()]
    if results.get("variants_vit_b16"):
        lines += ["", f"ViT-B/16 224, {sizes['vit_images']} images (img/s):", "", "| variant | img/s |", "|---|---|"]
        lines += [f"| {name} | {Summary.of(vals).text(1)} |" for name, vals in results["variants_vit_b16"].items()]
    base = results.get("baselines_default_threads", {})
    if base:
        lines += ["", "Baselines with torch's default thread count (all cores): "
                  + ", ".join(f"{k.replace('_default_threads', '')} {Summary.of(v).text(1)} img/s" for k, v in base.items())
                  + "."]
    best = {k: max(rows, key=lambda r: r["images_per_second"]) for k, rows in results["forward_sweep"].items()}
    lines += ["", "Best forward settings: " + "; ".join(
        f"{k}: batch {b['batch_size']}, {b['dtype']}, {'channels-last' if b['channels_last'] else 'contiguous'}, "
        f"{b.get('threads', '?')} thread(s)" for k, b in best.items()) + "."]
    lines += ["", "Decode + resize alone, all cores (img/s): "
              + ", ".join(f"{k} {v:.1f}" for k, v in results["decode_methods"].items()) + "."]
    if "real_images" in results:
        r = results["real_images"]
        lines += ["", f"Real photos ({r['count']} twitter1-dev JPEGs, mostly 600 px): decode ceiling "
                  f"{r['decode_ceiling']:.1f} img/s; default model stock {r['default_stock']:.1f}, tuned {r['default_tuned']:.1f} img/s."]
    for model, check in results["bf16_check"].items():
        acc = ""
        if "binary_accuracy_float32" in check:
            acc = (f"; binary accuracy float32 {check['binary_accuracy_float32']:.3f}, "
                   f"bf16 {check['binary_accuracy_bfloat16']:.3f}")
        lines.append(f"\nbf16 weights against float32 ({model}, {check['images']} images): labels agree on "
                     f"{check['label_agreement']:.1%}, largest probability gap {check['max_probability_gap']:.4f}{acc}.")
    if "compile" in results:
        c = results["compile"]["default"]
        lines.append(f"\ntorch.compile, default model, batch {c['batch_size']} {c['dtype']}: {c['images_per_second']:.1f} img/s "
                     f"after {c['compile_seconds']:.0f} s of compiling.")
    mem = results["memory_stream"]
    if mem.get("flat") is not None:
        lines.append(
            f"\nMemory over a stream of {mem['images']} images (tuned `imgsent classify`, {mem['images_per_second']:.1f} img/s): "
            f"process-tree PSS {mem['start_pss_mb']:.0f} MB after warm-up, {mem['end_pss_mb']:.0f} MB at the end "
            f"(growth {mem['growth_mb']:+.0f} MB, slope {mem['slope_mb_per_10k']:+.1f} MB per 10,000 images, "
            f"peak {mem['peak_pss_mb']:.0f} MB PSS / {mem['peak_rss_mb']:.0f} MB RSS sum): "
            f"{'flat' if mem['flat'] else 'NOT flat'}.")
    lines += ["", f"Command: `{results.get('command', 'python -m benchmarks.run')}`", ""]
    return "\n".join(lines)


def update_docs(table: str, files: tuple[Path, ...] = DOC_FILES) -> None:
    """Replace the text between the results markers in each file that has them."""
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            path.write_text(f"{head}{START}\n{table}\n{END}{tail}")


if __name__ == "__main__":  # python -m benchmarks.report results.json: print the tables again
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
