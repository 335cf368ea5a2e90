"""GPU check for imgsent: correctness, model throughput, GPU JPEG decoding, end to end, roofline.

Run on a CUDA machine (about 3 minutes on an H200)::

    python benchmarks/gpu_check.py --output gpu_check.json

and on any machine as a dry run with tiny sizes (what the tests do)::

    python benchmarks/gpu_check.py --device cpu

It uses only long-standing APIs (torch >= 2.1, torchvision >= 0.19, transformers >= 4.40):
``torch.autocast``, ``torch.utils.flop_counter.FlopCounterMode``, ``torchvision.io.decode_jpeg``
with a list of tensors and ``device="cuda"``, and imgsent's own Predictor.

Sections of the JSON it prints:

* ``matmul_roofline_tflops``: measured bf16 matmul throughput (the roofline the models are compared with).
* ``correctness``: GPU bf16 predictions against CPU float32 predictions on the same decoded batch.
* ``forward``: img/s per model and input size at the best batch size, bf16 autocast, channels-last,
  with GFLOPs per image, achieved TFLOPS and the fraction of the roofline.
* ``decode``: CPU worker decoding (imgsent's DataLoader path) against batched ``decode_jpeg(device="cuda")``,
  raw and through imgsent's GPU decode path (``imgsent.engines.gpu_decode``, the CUDA default).
* ``end_to_end``: ViT-B/16 from JPEG files through the Predictor with its CUDA default (GPU decoding),
  with CPU worker decoding, and with a hand-written GPU-decode loop.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(fn: Any, items: int, device: Any, *, min_seconds: float, warmup: int = 2) -> float:
    """Items per second of ``fn`` (called repeatedly, synchronised) after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return calls * items / elapsed


def matmul_roofline(device: Any, size: int, min_seconds: float) -> float:
    """Measured bf16 matmul TFLOPS on square matrices of ``size``."""
    import torch

    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    per_second = rate(lambda: a @ b, 1, device, min_seconds=min_seconds)
    return per_second * 2 * size**3 / 1e12


def build_model(arch: str, args: dict[str, Any], image_size: int) -> Any:
    import torch

    from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
    from imgsent.models.sentiment import SentimentModel

    torch.manual_seed(0)
    return SentimentModel(ModelConfig(ArchitectureConfig(arch, dict(args)), PreprocessConfig(image_size=image_size))).eval()


def flops_per_image(model: Any, image_size: int) -> float:
    """Forward FLOPs for one image (counted on CPU, float32)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(torch.zeros(1, 3, image_size, image_size))
    return float(counter.get_total_flops())


def forward_throughput(model: Any, image_size: int, device: Any, batch_sizes: list[int], min_seconds: float) -> dict[str, Any]:
    """Best img/s over ``batch_sizes`` with bf16 autocast and channels-last, on synthetic inputs."""
    import torch

    model = model.to(device).to(memory_format=torch.channels_last)
    rows = {}
    for batch_size in batch_sizes:
        x = torch.randn(batch_size, 3, image_size, image_size, device=device).contiguous(memory_format=torch.channels_last)

        def step(x: torch.Tensor = x) -> None:
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
                model(x)

        try:
            rows[batch_size] = rate(step, batch_size, device, min_seconds=min_seconds)
        except torch.OutOfMemoryError:
            break
    model.to("cpu")
    best = max(rows, key=rows.get)
    return {"images_per_second": rows[best], "best_batch_size": best, "by_batch_size": rows}


def correctness(spec: tuple[str, dict[str, Any], int], paths: list[str], device: Any) -> dict[str, Any]:
    """GPU (bf16 autocast) against CPU (float32) probabilities on the same decoded batch."""

    from imgsent.data import iter_batches
    from imgsent.predictor import Predictor

    arch, args, size = spec
    model = build_model(arch, args, size)
    cpu = Predictor(model, device="cpu", dtype="float32")
    batch = next(iter(iter_batches(paths, model.config.preprocess, batch_size=len(paths), workers=0)))
    p_cpu = cpu.forward(batch)
    gpu = Predictor(build_model(arch, args, size), device=device, dtype="bfloat16")
    p_gpu = gpu.forward(batch)
    gap = (p_cpu - p_gpu).abs().max().item()
    top2 = p_cpu.topk(2, dim=-1).values
    decided = (top2[:, 0] - top2[:, 1]) > 0.02  # ties within bf16 noise may flip; compare the rest
    agree = (p_cpu.argmax(-1) == p_gpu.argmax(-1))[decided]
    return {"images": len(paths), "max_probability_gap": gap, "tolerance": 0.02,
            "label_agreement_where_decided": float(agree.float().mean()) if agree.numel() else 1.0,
            "ok": gap <= 0.02 and bool(agree.all())}


def cpu_worker_decode(paths: list[str], image_size: int, workers: int, batch_size: int) -> float:
    """img/s of imgsent's DataLoader decoding alone (draft decode + bicubic resize in workers)."""
    from imgsent.config import PreprocessConfig
    from imgsent.data import iter_batches

    cfg = PreprocessConfig(image_size=image_size)
    list(iter_batches(paths[: batch_size * max(1, workers)], cfg, batch_size=batch_size, workers=workers))  # warm files
    start = time.perf_counter()
    done = sum(b.pixels.shape[0] for b in iter_batches(paths, cfg, batch_size=batch_size, workers=workers))
    return done / (time.perf_counter() - start)


def gpu_decode_resize(datas: list[Any], image_size: int, device: Any) -> Any:
    """Batched decode_jpeg on the device, then an antialiased bicubic resize; uint8 [B, 3, S, S]."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg
    from torchvision.transforms.v2.functional import InterpolationMode, resize

    images = decode_jpeg(datas, mode=ImageReadMode.RGB, device=device)
    if len({tuple(image.shape) for image in images}) == 1:  # one size: a single batched resize
        return resize(torch.stack(images), [image_size, image_size], InterpolationMode.BICUBIC, antialias=True)
    out = torch.empty(len(images), 3, image_size, image_size, dtype=torch.uint8, device=device)
    for i, image in enumerate(images):  # mixed sizes: resize each, write into one batch
        out[i] = resize(image, [image_size, image_size], InterpolationMode.BICUBIC, antialias=True)
    return out


class _ReadBytes:
    """Dataset reading raw file bytes in workers (decoding happens on the GPU)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> bytes:
        with open(self.paths[i], "rb") as fh:  # plain bytes: tensors from read_file cannot be shared by fd
            return fh.read()


def end_to_end_gpu_decode(paths: list[str], model: Any, device: Any, batch_size: int, workers: int) -> float:
    """ViT from JPEG files: workers read bytes, the GPU decodes, resizes, normalises and runs the model."""
    import torch
    from torch.utils.data import DataLoader

    from imgsent.transforms import normalize

    cfg = model.config.preprocess
    model = model.to(device).to(memory_format=torch.channels_last)
    loader = DataLoader(_ReadBytes(paths), batch_size=batch_size, num_workers=workers, collate_fn=list,
                        prefetch_factor=4 if workers else None, persistent_workers=False)
    done, start = 0, time.perf_counter()
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
        for raw in loader:
            datas = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in raw]
            pixels = gpu_decode_resize(datas, cfg.image_size, device)
            probs = torch.softmax(model(normalize(pixels, cfg).contiguous(memory_format=torch.channels_last)).float(), -1)
            done += probs.shape[0]
        sync(device)
    model.to("cpu")
    return done / (time.perf_counter() - start)


def end_to_end_predictor(paths: list[str], model: Any, device: Any, batch_size: int, workers: int, *, cpu_decode: bool = False) -> float:
    """ViT from JPEG files through the Predictor, bf16 autocast on CUDA.

    By default the Predictor decodes JPEGs on the GPU on CUDA (``imgsent.engines.gpu_decode``);
    ``cpu_decode=True`` feeds it imgsent's CPU worker batches instead, for the comparison.
    """
    from imgsent.data import iter_batches
    from imgsent.predictor import Predictor

    predictor = Predictor(model, device=device, dtype="bfloat16")
    start = time.perf_counter()
    if cpu_decode:
        batches = iter_batches(paths, predictor.config.preprocess, batch_size=batch_size, workers=workers,
                               pin_memory=device.type == "cuda")
        done = sum(predictor.forward(b).shape[0] for b in batches)
    else:
        done = sum(1 for _ in predictor.iter_predict(paths, batch_size=batch_size, workers=workers))
    sync(device)
    return done / (time.perf_counter() - start)


def imgsent_gpu_decode(paths: list[str], image_size: int, device: Any, batch_size: int, workers: int) -> float:
    """img/s of imgsent's GPU decode path alone (bytes read in workers, batched nvJPEG, on-device resize)."""
    from imgsent.config import PreprocessConfig
    from imgsent.engines.gpu_decode import iter_gpu_batches

    cfg = PreprocessConfig(image_size=image_size)
    start = time.perf_counter()
    done = sum(b.pixels.shape[0] for b in iter_gpu_batches(paths, cfg, batch_size=batch_size, workers=workers, device=device))
    sync(device)
    return done / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/gpu_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (the real check) or cpu (a dry run with tiny sizes).")
    parser.add_argument("--images", type=int, default=None, help="JPEGs to generate (default 4096 on CUDA, 16 on CPU).")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args(argv)

    import torch

    from benchmarks.common import cores, jpeg_paths, make_jpegs

    device = torch.device(args.device)
    dry = device.type != "cuda"
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available; run with --device cpu for a dry run.", file=sys.stderr)
        return 2
    n_images = args.images or (16 if dry else 4096)
    workers = max(1, min(16, cores() - 1)) if not dry else 1
    min_seconds = 0.0 if dry else 1.5
    tiny_vit = {"image_size": 32, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    if dry:
        models = {"default": ("efficientnet_lite0", {}, 64), "vit_b16_224": ("vit_b16", tiny_vit, 32)}
        batch_sizes, e2e_batch = [2, 4], 4
    else:
        models = {
            "default": ("efficientnet_lite0", {}, 224),
            "vit_b16_224": ("vit_b16", {"image_size": 224}, 224),
            "vit_b16_384": ("vit_b16", {"image_size": 384}, 384),
            "vit_l16_224": ("vit_l16", {"image_size": 224}, 224),
            "vit_l16_384": ("vit_l16", {"image_size": 384}, 384),
        }
        batch_sizes, e2e_batch = [64, 256, 512], 256
    workdir = args.workdir or Path(tempfile.gettempdir()) / "imgsent-gpu-check"
    size = (96, 64) if dry else (1024, 768)
    paths = jpeg_paths(make_jpegs(workdir / f"jpegs-{n_images}-{size[0]}x{size[1]}", n_images, size=size))

    out: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run, tiny sizes)",
        "torch": torch.__version__, "dry_run": dry, "images": n_images, "cpu_workers": workers,
    }
    report = lambda key, value: (out.__setitem__(key, value), print(f"{key}: {json.dumps(value)}", file=sys.stderr))  # noqa: E731
    roofline = matmul_roofline(device, 128 if dry else 8192, min_seconds)
    report("matmul_roofline_tflops", roofline)

    try:
        import timm  # noqa: F401  (the default model's backbone)
    except ImportError:
        models.pop("default")
        report("skipped", "default model: timm is not installed")

    report("correctness", {name: correctness(spec, paths[:8], device) for name, spec in models.items()
                           if name in ("default", "vit_b16_224")})
    forward: dict[str, Any] = {}
    for name, (arch, margs, image_size) in models.items():
        model = build_model(arch, margs, image_size)
        flops = flops_per_image(model, image_size)
        row = forward_throughput(model, image_size, device, batch_sizes, min_seconds)
        row["gflops_per_image"] = flops / 1e9
        row["achieved_tflops"] = row["images_per_second"] * flops / 1e12
        row["fraction_of_roofline"] = row["achieved_tflops"] / roofline if roofline else 0.0
        forward[name] = row
        report(f"forward.{name}", row)
    out["forward"] = forward

    tensors = [torch.frombuffer(bytearray(Path(p).read_bytes()), dtype=torch.uint8) for p in paths[: e2e_batch * 4]]
    decode = {
        "cpu_workers_img_s": cpu_worker_decode(paths, 224 if not dry else 32, workers, e2e_batch),
        "gpu_decode_jpeg_img_s": rate(lambda: gpu_decode_resize(tensors, 224 if not dry else 32, device), len(tensors),
                                      device, min_seconds=min_seconds, warmup=1) if device.type == "cuda" else None,
        "imgsent_gpu_decode_img_s": imgsent_gpu_decode(paths, 224 if not dry else 32, device, e2e_batch, workers)
        if device.type == "cuda" else None,
    }
    report("decode", decode)

    arch, margs, image_size = models["vit_b16_224"]
    e2e = {
        "predictor_default_img_s": end_to_end_predictor(paths, build_model(arch, margs, image_size), device,
                                                        e2e_batch, workers),
        "predictor_cpu_decode_img_s": end_to_end_predictor(paths, build_model(arch, margs, image_size), device,
                                                           e2e_batch, workers, cpu_decode=True),
        "gpu_decode_img_s": end_to_end_gpu_decode(paths, build_model(arch, margs, image_size), device, e2e_batch, workers),
        "target_img_s": 5000,
    }
    report("end_to_end_vit_b16_224", e2e)
    print(json.dumps(out, indent=2, default=str))
    if args.output:
        args.output.write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
