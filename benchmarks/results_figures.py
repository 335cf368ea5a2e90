"""Make the figures of docs/how-to/results.md and docs/models.md.

    python benchmarks/results_figures.py            # explanation overlays + reliability diagram
    python benchmarks/results_figures.py --report   # also the report screenshot (needs ../shared/data and chromium)

Writes into docs/assets/results/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "assets" / "results"
DEV = REPO.parent / "shared" / "data" / "twitter1-dev" / "images"


def overlays() -> None:
    from imgsent.explain import explain_files
    from imgsent.predictor import Predictor

    predictor = Predictor.from_pretrained(device="cpu", dtype="float32")
    images = sorted(str(p) for p in (REPO / "examples" / "images").glob("*.jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        for item in explain_files(predictor, images, tmp):
            from PIL import Image

            small = Image.open(item.path)
            small.thumbnail((720, 720))
            target = OUT / f"explain-{Path(item.source).stem}.jpg"
            small.convert("RGB").save(target, quality=82, optimize=True)
            print(f"{Path(item.source).name}: {item.label} {item.confidence:.2f} -> {target.relative_to(REPO)}")


def reliability() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config = json.loads((REPO / "imgsent" / "weights" / "default" / "config.json").read_text())
    cal = config["provenance"]["calibration"]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), sharey=True)
    for ax, key, title in ((axes[0], "bins_before", "before (T = 1)"), (axes[1], "bins_after", f"after (T = {cal['temperature']:.2f})")):
        bins = [b for b in cal[key] if b["count"]]
        ece = cal["ece_before" if key == "bins_before" else "ece_after"]
        ax.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["accuracy"] for b in bins], width=1 / len(cal[key]),
               edgecolor="black", color="#4a90d9", label="accuracy vs teacher")
        ax.plot([(b["low"] + b["high"]) / 2 for b in bins], [b["confidence"] for b in bins], "o", color="#c0392b",
                label="mean confidence")
        ax.plot([0, 1], [0, 1], "--", color="gray")
        ax.set_title(f"{title}: ECE {100 * ece:.1f} %")
        ax.set_xlabel("confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Default model, {cal['heldout_images']} held-out images, teacher labels ({cal['source']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(OUT / "reliability-default.png", dpi=90)
    print(f"reliability diagram -> {(OUT / 'reliability-default.png').relative_to(REPO)}")


def report_screenshot() -> None:
    from PIL import Image

    from imgsent.classify import classify_files
    from imgsent.predictor import Predictor
    from imgsent.report import write_report

    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None or not DEV.exists():
        sys.exit(f"needs chromium and {DEV}")
    with tempfile.TemporaryDirectory() as tmp:
        results, page, shot = Path(tmp) / "dev.csv", Path(tmp) / "dev.html", Path(tmp) / "shot.png"
        classify_files(Predictor.from_pretrained(), [DEV], output=results)
        write_report(results, page, model="default")
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                        "--window-size=1100,1500", page.as_uri()], check=True, capture_output=True)
        Image.open(shot).convert("RGB").save(OUT / "report.jpg", quality=80, optimize=True)
    print(f"report screenshot -> {(OUT / 'report.jpg').relative_to(REPO)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="also make the report screenshot")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    overlays()
    reliability()
    if args.report:
        report_screenshot()


if __name__ == "__main__":
    main()
