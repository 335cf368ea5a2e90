"""Distil a tiny image-sentiment student from a caption corpus, end to end, on a CPU.

Usage:
    python examples/distill_tiny.py                                   # the shared twitter1-dev corpus
    python examples/distill_tiny.py --corpus data/corpus.jsonl --posts 200 --steps 20 --out runs/tiny

Steps, through the Python API behind ``imgsent distill``:

1. read the corpus (imgsent JSONL: ``{"id", "text", "images"}``) with the paper's filters;
2. drop exact duplicate images;
3. label every text with the VADER teacher (offline), cached in ``labels.jsonl``;
4. keep confident labels, split train/val by post;
5. train a tiny random-weight student for a few steps;
6. load the exported model folder and classify a few training images.

It shows the mechanics in about a minute; a model worth using needs a real backbone
(``--student efficientnet_lite0``), many more posts and full epochs (see the recipe docs).
Human labels are never read.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "twitter1-dev" / "corpus.jsonl"


def build_student(kind: str):  # noqa: ANN201 - returns a SentimentModel
    """A tiny random ViT (fast on any CPU) or EfficientNet-Lite0 with ImageNet weights."""
    from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
    from imgsent.models.sentiment import SentimentModel

    if kind == "tiny":
        args = {"image_size": 32, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
        return SentimentModel(ModelConfig(ArchitectureConfig("vit_b16", args), PreprocessConfig(image_size=32)))
    from imgsent.distill.backbones import load_imagenet_backbone

    model = SentimentModel(ModelConfig(ArchitectureConfig(kind, {"head_hidden": 32}), PreprocessConfig(image_size=224)))
    load_imagenet_backbone(model)  # offline: the weights come from the imgsent[distill] extra
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="imgsent JSONL corpus (default: shared twitter1-dev)")
    parser.add_argument("--out", default="runs/distill-tiny", help="run folder (default: runs/distill-tiny)")
    parser.add_argument("--posts", type=int, default=120, help="use the first N kept posts (default: 120)")
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps (default: 6)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--student", default="tiny", choices=["tiny", "efficientnet_lite0"])
    args = parser.parse_args(argv)

    import torch

    from imgsent import Predictor
    from imgsent.distill.corpus import read_corpus
    from imgsent.distill.dedup import apply_dedup, find_exact_duplicates
    from imgsent.distill.labels import iter_label_cache, label_corpus
    from imgsent.distill.select import Thresholds, select_samples, write_selection
    from imgsent.distill.teacher import VaderTeacher
    from imgsent.distill.records import TrainConfig
    from imgsent.distill.trainer import train_student

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. Ingest. The caption corpus has no language field and short captions are rare.
    reader = read_corpus(args.corpus, lang=None, min_words=3)
    posts = list(itertools.islice(reader, args.posts))
    print(f"ingest: {len(posts)} posts")

    # 2. Exact duplicates (near-duplicate removal needs an image embedding; see imgsent.distill.dedup).
    dedup = find_exact_duplicates([image for post in posts for image in post.images])
    posts = list(apply_dedup(posts, dedup))
    print(f"dedup: {len(posts)} posts left")

    # 3. Teacher labels, cached and resumable: rerunning skips posts already labelled.
    teacher = VaderTeacher()
    report = label_corpus(posts, teacher, out / "labels.jsonl")
    print(f"label: {report.labelled} labelled, {report.cached} from the cache")

    # 4. Confident labels only; a post's images never straddle train and val.
    selection = select_samples(iter_label_cache(out / "labels.jsonl"), thresholds=Thresholds(), val_fraction=0.2, seed=0)
    write_selection(selection, out / "select", teacher={"id": teacher.id, "revision": teacher.revision})
    print(f"select: {len(selection.train)} train / {len(selection.val)} val images; counts {selection.counts['train']['images']}")
    for warning in selection.warnings:
        print(f"select: warning: {warning}")
    if not selection.train:
        print("select: no confident labels; use more posts or lower thresholds")
        return 1

    # 5. Train. batch_size is the global batch; under torchrun it is split across processes.
    torch.manual_seed(0)
    student = build_student(args.student)
    config = TrainConfig(
        batch_size=args.batch_size, epochs=1, freeze_backbone_epochs=0, max_steps=args.steps,
        keep_model="last", device="cpu", num_workers=0, checkpoint_every=0,
    )
    result = train_student(student, selection.train, selection.val, config, out / "train", resume=True)
    print(f"train: {result.steps} steps, model folder {result.model_dir}")

    # 6. Use the exported folder like any other model.
    predictor = Predictor.from_pretrained(result.model_dir, device="cpu")
    sample = [s.image for s in selection.train[:4]]
    for prediction in predictor.predict(sample, workers=0):
        print(f"predict: {Path(prediction.source).name}: {prediction.label} {json.dumps(prediction.probabilities)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
