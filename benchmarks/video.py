"""Videos: sampled-frame classification by seeking, against decoding every frame, in the same run; memory on a long clip.

Run: ``python -m benchmarks.video`` (about 5 minutes on 2 cores); ``--tiny`` is a smoke run.

Clips are made once under ``--workdir`` from real photos (the twitter1-dev images under
``../shared/data`` when present, else ``examples/images``): each is a slow pan and zoom over one
photo, then a crossfade to the next, over three photos, H.264 at ``--size`` and ``--fps`` with a
keyframe every ``--gop`` frames (2 s by default, as phone and social-media encoders do).

Per repeat, on the same clips and the same default model (float32, CPU):

* **imgsent**: ``classify_files(predictor, [folder], frames=8)``, the library side of
  ``imgsent classify`` (PyAV seeks to the keyframe before each sampled time, decodes forward to
  it, and the frames of several videos share forward passes);
* **naive**: per clip, decode every frame with PyAV in order, keep the frames at the same
  sampled times, classify them with ``Predictor.predict`` and average. The frames it classifies are
  the same, so the rows must agree; only the decoding differs.

videos/s and frames/s (sampled frames classified per second) are reported for both, with the
ratio per repeat. Memory: the frames of a ``--long-seconds`` clip are decoded in a fresh child
process (no model), once by :func:`imgsent.video.sample_frames` and once naively, reporting the
time and the peak resident memory (sampled every 5 ms) over the resident memory at the start. Results go to ``benchmarks/results/video.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import REPO, SHARED_DATA, Summary, load_average, machine_info, ratio, write_json

RESULTS = REPO / "benchmarks" / "results" / "video.json"

MEMORY_CHILD = r"""
import json, os, sys, threading, time
from benchmarks.video import naive_frames
from imgsent.video import sample_frames
page = os.sysconf("SC_PAGE_SIZE") / 2**20
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * page
before, peak, done = rss(), [0.0], threading.Event()
def watch():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.005)
watcher = threading.Thread(target=watch)
watcher.start()
start = time.perf_counter()
if sys.argv[2] == "imgsent":
    frames = [f.image for f in sample_frames(sys.argv[1], 8)]
else:
    frames = naive_frames(sys.argv[1], 8)
seconds = time.perf_counter() - start
done.set()
watcher.join()
print(json.dumps({"seconds": seconds, "rss_before_mb": before, "peak_rss_mb": max(peak[0], rss()), "frames": len(frames)}))
"""


def photo_paths(limit: int) -> list[Path]:
    """Real photos: twitter1-dev when present, else the repo's examples."""
    shared = SHARED_DATA / "twitter1-dev" / "images"
    folder = shared if shared.is_dir() else REPO / "examples" / "images"
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]


def _fit(path: Path, size: tuple[int, int], scale: float) -> np.ndarray:
    """The photo, covering ``size`` times ``scale`` (for pan and zoom room)."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    target = (round(size[0] * scale), round(size[1] * scale))
    factor = max(target[0] / image.width, target[1] / image.height)
    image = image.resize((max(target[0], round(image.width * factor)), max(target[1], round(image.height * factor))))
    return np.asarray(image)


def make_clip(path: Path, photos: list[Path], *, seconds: float, size: tuple[int, int], fps: int, gop: int) -> Path:
    """A slow pan and zoom over each photo with a one-second crossfade to the next, H.264."""
    import av
    from PIL import Image

    total = round(seconds * fps)
    per = total / len(photos)
    sources = [_fit(p, size, 1.3) for p in photos]

    def view(k: int, progress: float) -> np.ndarray:
        source = sources[k]
        zoom = 1.3 - 0.25 * progress  # zoom in slowly
        w, h = round(size[0] * zoom), round(size[1] * zoom)
        x = round((source.shape[1] - w) * progress)
        y = round((source.shape[0] - h) * 0.5)
        crop = Image.fromarray(source[y:y + h, x:x + w]).resize(size)
        return np.asarray(crop, dtype=np.float32)

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "veryfast", "g": str(gop)})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(total):
            k = min(len(photos) - 1, int(i / per))
            frame = view(k, (i - k * per) / per)
            fade = (i - (k + 1) * per + fps) / fps  # the last second of each photo fades into the next
            if k + 1 < len(photos) and fade > 0:
                frame = (1 - fade) * frame + fade * view(k + 1, 0.0)
            video_frame = av.VideoFrame.from_ndarray(frame.clip(0, 255).astype(np.uint8), format="rgb24")
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def naive_video(predictor: Any, path: str, frames: int) -> tuple[float, float, float]:
    """Decode every frame in order, keep those at the sampled times, classify them and average."""
    predictions = predictor.predict(naive_frames(path, frames), workers=0)
    return tuple(float(np.mean([getattr(p, n) for p in predictions])) for n in ("negative", "neutral", "positive"))  # type: ignore[return-value]


def naive_frames(path: str, frames: int) -> list[Any]:
    """Every frame decoded in order; those at the sampled times kept as PIL images."""
    import av

    from imgsent.video import sample_times

    with av.open(path) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base)
        step = 1 / float(stream.average_rate)
        targets = sample_times(duration, frames, start=float((stream.start_time or 0) * stream.time_base))
        kept = []
        for frame in container.decode(stream):
            if targets and frame.time >= targets[0] - step / 2:
                kept.append(frame.to_image())
                targets.pop(0)
    return kept


def _memory(path: Path, how: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(path), how], cwd=REPO, capture_output=True,
                         text=True, check=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    from imgsent import Predictor
    from imgsent.classify import classify_files
    from imgsent.report.results import read_results

    work = Path(args.workdir)
    clips_dir = work / f"clips-{args.clips}x{args.seconds}s-{args.size}"
    size = tuple(int(v) for v in args.size.split("x"))
    photos = photo_paths(3 * args.clips + 3)
    if not clips_dir.is_dir() or len(list(clips_dir.glob("*.mp4"))) < args.clips:
        clips_dir.mkdir(parents=True, exist_ok=True)
        for i in range(args.clips):
            make_clip(clips_dir / f"clip{i:03d}.mp4", photos[3 * i:3 * i + 3], seconds=args.seconds, size=size,
                      fps=args.fps, gop=args.gop)
    long_clip = work / f"long-{args.long_seconds}s-{args.size}.mp4"
    if not long_clip.exists():
        make_clip(long_clip, photos[-3:], seconds=args.long_seconds, size=size, fps=args.fps, gop=args.gop)
    clips = sorted(str(p) for p in clips_dir.glob("*.mp4"))[: args.clips]
    predictor = Predictor.from_pretrained(device="cpu", dtype="float32")
    predictor.predict(["examples/images/coffee_cup.jpg"])  # warm-up
    fast, slow, loads, gaps = [], [], [], []
    for _ in range(args.repeats):
        loads.append(load_average()[0])
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            summary = classify_files(predictor, clips, output=Path(tmp) / "out.csv", frames=args.frames)
            fast.append(time.perf_counter() - start)
            rows = {r.path: r for r in read_results(Path(tmp) / "out.csv")}
        assert summary.errors == 0, summary
        start = time.perf_counter()
        naive = {clip: naive_video(predictor, clip, args.frames) for clip in clips}
        slow.append(time.perf_counter() - start)
        gaps.append(max(abs(rows[c].probabilities[k] - naive[c][k]) for c in clips for k in range(3)))  # type: ignore[index]
    n, f = len(clips), len(clips) * args.frames
    memory = {how: _memory(long_clip, how) for how in ("imgsent", "naive")}
    return {
        "machine": machine_info(), "load_average_during_repeats": loads,
        "setup": {"clips": n, "seconds": args.seconds, "size": args.size, "fps": args.fps, "gop": args.gop,
                  "frames": args.frames, "repeats": args.repeats, "photos": photos[0].parent.parent.name,
                  "long_seconds": args.long_seconds},
        "imgsent_videos_per_s": Summary.of([n / s for s in fast]).__dict__,
        "imgsent_frames_per_s": Summary.of([f / s for s in fast]).__dict__,
        "naive_videos_per_s": Summary.of([n / s for s in slow]).__dict__,
        "naive_frames_per_s": Summary.of([f / s for s in slow]).__dict__,
        "speedup": ratio([n / s for s in fast], [n / s for s in slow]).__dict__,
        "largest_probability_gap": max(gaps),
        "long_clip": memory,
    }


def markdown(r: dict[str, Any]) -> str:
    """The results as a Markdown table and a memory line."""
    s, fmt = r["setup"], (lambda d, k=1: Summary(**d).text(k))
    mem = r["long_clip"]
    return "\n".join([
        f"{s['clips']} clips of {s['seconds']} s, {s['size']} at {s['fps']} fps, H.264 with a keyframe every "
        f"{s['gop']} frames, made from real photos ({s['photos']}); {s['frames']} frames per clip; default model, "
        f"float32, CPU; {s['repeats']} repeats, median (min–max); load average "
        f"{', '.join(f'{x:.2f}' for x in r['load_average_during_repeats'])}.",
        "",
        "| | videos/s | frames/s |",
        "|---|---|---|",
        f"| imgsent (seek to each sampled time) | {fmt(r['imgsent_videos_per_s'], 2)} | {fmt(r['imgsent_frames_per_s'])} |",
        f"| naive (decode every frame) | {fmt(r['naive_videos_per_s'], 2)} | {fmt(r['naive_frames_per_s'])} |",
        f"| ratio imgsent / naive | {fmt(r['speedup'], 2)} | |",
        "",
        f"Rows agree: largest probability gap {r['largest_probability_gap']:.2e}. Decoding the 8 sampled frames "
        f"of a long clip ({s['long_seconds']} s, {s['size']}), alone in a fresh process: imgsent "
        f"{mem['imgsent']['seconds']:.2f} s, peak RSS {mem['imgsent']['peak_rss_mb']:.0f} MB "
        f"(+{mem['imgsent']['peak_rss_mb'] - mem['imgsent']['rss_before_mb']:.0f} MB over the start); naive "
        f"{mem['naive']['seconds']:.2f} s, peak RSS {mem['naive']['peak_rss_mb']:.0f} MB "
        f"(+{mem['naive']['peak_rss_mb'] - mem['naive']['rss_before_mb']:.0f} MB).",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--gop", type=int, default=60)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-seconds", type=int, default=300)
    parser.add_argument("--workdir", default="/tmp/imgsent-bench-video")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--tiny", action="store_true", help="smoke run: 2 short small clips, 1 repeat")
    args = parser.parse_args(argv)
    if args.tiny:
        args.clips, args.seconds, args.size, args.repeats, args.long_seconds, args.fps = 2, 2.0, "96x64", 1, 4, 12
    result = run(args)
    write_json(args.out, result)
    print(markdown(result))


if __name__ == "__main__":
    main()
