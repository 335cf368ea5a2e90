"""Forward-pass speed of the paper's four students on this machine, with random weights of the same shape.

    python -m benchmarks.paper_speed --batch 8 --repeats 3

Builds each preset's network exactly as a converted folder would (float32, eval mode,
``torch.inference_mode``), times ``--repeats`` forward passes of a random batch after one warm-up,
and prints images per second (best repeat) with the load average, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from imgsent.config import ArchitectureConfig
from imgsent.convert.keras import PRESETS
from imgsent.models import build_network


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--presets", nargs="*", default=list(PRESETS))
    args = parser.parse_args()
    results = {"threads": torch.get_num_threads(), "batch": args.batch, "load_average_start": os.getloadavg()[0]}
    for name in args.presets:
        preset = PRESETS[name]
        arch = ArchitectureConfig(preset.architecture, {"image_size": preset.image_size, "head_activation": "gelu_tanh",
                                                        "layer_norm_eps": 1e-6})
        net = build_network(arch).eval()
        pixels = torch.randn(args.batch, 3, preset.image_size, preset.image_size)
        times = []
        with torch.inference_mode():
            net(pixels)
            for _ in range(args.repeats):
                start = time.perf_counter()
                net(pixels)
                times.append(time.perf_counter() - start)
        results[name] = {"params_m": round(sum(p.numel() for p in net.parameters()) / 1e6, 1),
                         "images_per_s": round(args.batch / min(times), 2)}
        del net
    results["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
