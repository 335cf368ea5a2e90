"""Plots for the docs from a results file: forward throughput against batch size, and end to end.

Usage::

    python -m benchmarks.plot benchmarks/results/latest.json   # writes docs/assets/benchmarks/*.svg

Needs matplotlib (``pip install matplotlib``; it is not an imgsent dependency).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import REPO

ASSETS = REPO / "docs" / "assets" / "benchmarks"


def _median(value: Any) -> float:
    return float(value["median"] if isinstance(value, dict) else value.median)


def plot(results: dict[str, Any], folder: Path = ASSETS) -> list[Path]:
    """Write ``forward_vs_batch_size.svg`` and ``end_to_end.svg``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "imgsent"  # stable ids: the files only change when the numbers do
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    titles = {"default": "default model (EfficientNet-Lite0 224)", "vit_b16": "ViT-B/16 224"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (key, rows) in zip(axes, results["forward_sweep"].items()):
        series: dict[str, list[tuple[int, float]]] = {}
        for row in rows:
            label = row["dtype"] + (" channels-last" if row["channels_last"] else "") + f", {row.get('threads', '?')} thr"
            series.setdefault(label, []).append((row["batch_size"], row["images_per_second"]))
        for label, points in series.items():
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel("images / s (forward only)")
        ax.set_title(titles.get(key, key))
        ax.grid(True, alpha=0.3)
        ax.legend()
    m = results["machine"]
    fig.suptitle(f"Forward pass alone, {m['cores']} cores, torch {m['torch']}")
    fig.tight_layout()
    path = folder / "forward_vs_batch_size.svg"
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)
    written.append(path)

    s = results["summary"]
    names = ["naive loop", "pipeline", "imgsent stock", "imgsent tuned", "decode ceiling", "forward ceiling"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, model, title in ((axes[0], "default", titles["default"]), (axes[1], "vit", titles["vit_b16"])):
        keys = [f"{model}_naive" if model == "default" else None, "vit_pipeline" if model == "vit" else None,
                f"{model}_stock", f"{model}_tuned", "decode_ceiling", f"{model}_forward_ceiling"]
        bars = [(n, _median(s[k])) for n, k in zip(names, keys) if k is not None and k in s]
        ax.barh([b[0] for b in bars], [b[1] for b in bars], color=["#999"] * (len(bars) - 2) + ["#4a7", "#4a7"])
        ax.set_xlabel("images / s (median)")
        ax.set_title(title)
        ax.invert_yaxis()
    fig.suptitle("End to end from 1024×768 JPEG files, against baselines and ceilings")
    fig.tight_layout()
    path = folder / "end_to_end.svg"
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else REPO / "benchmarks" / "results" / "latest.json"
    folder = Path(args[1]) if len(args) > 1 else ASSETS
    for path in plot(json.loads(source.read_text()), folder):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
