"""Every distillation stage before training, on synthetic corpora of growing size, extrapolated to 3.7 M posts.

Run::

    python -m benchmarks.distill_scale scale --sizes 50000,300000,1000000
    python -m benchmarks.distill_scale embed --images 2000
    python -m benchmarks.distill_scale resume --images 2000
    python -m benchmarks.distill_scale teacher --images 4000

``scale``: a corpus of ``N`` posts (captions with sentiment words, one tiny PNG each; 1 % exact
copies, 1 % near duplicates at distance 0.05 and 1 % near misses at 0.25) runs
``ingest -> dedup -> label -> select`` with the real :class:`~imgsent.distill.pipeline.DistillRun`
with each stage in a fresh process. The embedding is a fast stand-in (a 1280-wide unit vector per image, drawn
from its file name, the width of EfficientNet-Lite0's features), because embedding a million
images would take hours; everything else (the chunked store, the index, the re-check, the
groups) is the real code. Time and peak resident memory are recorded per stage, with the
growth exponent between the sizes and a linear extrapolation of memory (and a power-law one of
time) to 3.7 M.

``embed``: the dedup embedding pass (features graph, chosen engine) against ``imgsent classify``
on the same small JPEGs, each in a fresh process, plus the previous embedding path (PyTorch
float32, :func:`imgsent.distill.probe.embed_rows`).

``resume``: the dedup embedding pass SIGKILLed at 60 %, then rerun; the rerun's time against an
uninterrupted run.

``teacher``: texts per second of the ``hf`` teacher on the CPU with a small random-weight RoBERTa
(built from a ``RobertaConfig``, no download), one text per pass against length-sorted batches of 64.

Results go to ``benchmarks/results/distill_scale_*.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, load_average, make_jpegs, write_json

PAPER_POSTS = 3_700_000
DIM = 1280
MEMORY_GB = 4.0
"""The dedup stage's memory budget in the scale runs (``dedup.memory_gb``)."""
RESULTS = REPO / "benchmarks" / "results"
_WORDS = ("great happy love wonderful awful sad terrible hate fine okay table window street coffee "
          "morning today friends really very not quite the a of and").split()


# -- scale --------------------------------------------------------------------------------------------------

def make_corpus(folder: Path, n: int, seed: int = 0) -> Path:
    """``n`` posts with one tiny PNG each (file names tell the stand-in embedding what they copy)."""
    import numpy as np

    corpus = folder / "corpus.jsonl"
    if (folder / f".complete-{n}").exists():
        return corpus
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    template = _tiny_png()
    with open(corpus, "w", encoding="utf-8") as out:
        for i in range(n):
            roll = i % 100
            if roll == 97 and i > 100:  # exact copy of an earlier image
                name, data = f"x{i}_{i - 50}.png", _tagged(template, i - 50)
            elif roll == 98 and i > 100:
                name, data = f"n{i}_{i - 60}.png", _tagged(template, i)  # near duplicate of i - 60
            elif roll == 99 and i > 100:
                name, data = f"m{i}_{i - 70}.png", _tagged(template, i)  # near miss of i - 70
            else:
                name, data = f"b{i}_{i}.png", _tagged(template, i)
            (images / name).write_bytes(data)
            words = " ".join(rng.choice(_WORDS, 8))
            out.write(json.dumps({"id": str(i), "text": words, "images": [str(images / name)]}) + "\n")
    (folder / f".complete-{n}").touch()
    return corpus


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (120, 80, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def _tagged(template: bytes, tag: int) -> bytes:
    """The PNG with ``tag`` after its end marker: a valid image with bytes of its own."""
    return template + tag.to_bytes(8, "little")


def stand_in_embed(paths: list[str]) -> Any:
    """A unit vector per image, drawn from its source number; near duplicates and near misses perturb their source's."""
    import numpy as np

    out = np.empty((len(paths), DIM), dtype=np.float32)
    for row, path in enumerate(paths):
        kind, _, source = Path(path).stem.partition("_")
        vector = np.random.default_rng(int(source)).standard_normal(DIM).astype(np.float32)
        vector /= np.linalg.norm(vector)
        if kind[0] in "nm":
            noise = np.random.default_rng(int(kind[1:])).standard_normal(DIM).astype(np.float32)
            vector = vector + (0.05 if kind[0] == "n" else 0.25) * noise / np.linalg.norm(noise)
        out[row] = vector
    return out


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


STAGES = ("ingest", "dedup", "label", "select")


def run_child(n: int, corpus: Path, workdir: Path, stage: str) -> dict[str, Any]:
    """In this process: one stage of the pipeline (the earlier ones done), with its time and peak RSS."""
    from imgsent.distill.pipeline import DistillRun
    from imgsent.distill.recipe import recipe_from_dict

    recipe = recipe_from_dict({
        "name": "scale", "corpus": {"path": str(corpus), "lang": None, "min_words": 3},
        "dedup": {"search": "faiss" if n >= 100_000 else "exact", "memory_gb": MEMORY_GB},
        "selection": {"thresholds": {"negative": 0.5, "neutral": 0.5, "positive": 0.5}},
    }, base=corpus.parent)
    stages: dict[str, dict[str, float]] = {}
    current = {"name": "", "start": 0.0, "peak": 0.0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            current["peak"] = max(current["peak"], _rss_mib())
            time.sleep(0.05)

    def log(line: str) -> None:
        name, _, event = line.partition(": ")
        if event == "running":
            current.update(name=name, start=time.perf_counter(), peak=_rss_mib())
        elif event.startswith("done"):
            stages[name] = {"seconds": time.perf_counter() - current["start"], "peak_rss_mib": current["peak"]}

    DistillRun._embedder = lambda self: (stand_in_embed, "stand-in")  # type: ignore[method-assign]
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    (result,) = DistillRun(recipe, workdir, log=log).run(only=stage)
    stop.set()
    thread.join()
    return {"stages": stages, "summary": {k: v for k, v in result.summary.items() if not isinstance(v, (dict, list))}}


def scale(sizes: list[int], root: Path) -> dict[str, Any]:
    rows = []
    for n in sizes:
        folder = root / f"corpus-{n}"
        start = time.perf_counter()
        corpus = make_corpus(folder, n)
        made = time.perf_counter() - start
        workdir = root / f"run-{n}"
        subprocess.run(["rm", "-rf", str(workdir)], check=True)
        row: dict[str, Any] = {"n": n, "stages": {}, "corpus_generation_seconds": made}
        for stage in STAGES:  # each stage in a fresh process, so no stage inherits another's heap
            out = subprocess.run([sys.executable, "-m", "benchmarks.distill_scale", "child", str(n), str(corpus),
                                  str(workdir), stage], cwd=REPO, capture_output=True, text=True, check=True)
            child = json.loads(out.stdout.strip().splitlines()[-1])
            row["stages"].update(child["stages"])
            if stage == "dedup":
                row["dedup"] = child["summary"]
        rows.append(row)
        print(json.dumps(row), flush=True)
        subprocess.run(["rm", "-rf", str(workdir)], check=True)
    return {"sizes": sizes, "rows": rows, "growth": extrapolate(rows), "load_average_1min": load_average()[0], "dim": DIM}


def extrapolate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per stage: the time exponent and memory per post between the two largest sizes, and both at 3.7 M posts."""
    growth: dict[str, Any] = {}
    first, last = rows[-2], rows[-1]  # the two largest: the same search method, the clearest trend
    for stage in last["stages"]:
        t0, t1 = first["stages"][stage]["seconds"], last["stages"][stage]["seconds"]
        m0, m1 = first["stages"][stage]["peak_rss_mib"], last["stages"][stage]["peak_rss_mib"]
        exponent = math.log(max(t1, 1e-3) / max(t0, 1e-3)) / math.log(last["n"] / first["n"])
        # The index's codes are planned, not grown: its 8-bit codes at 1 M become 4-bit ones at 3.7 M
        # (plan_index, within memory_gb). So memory is the index planned for 3.7 M (or the k-means
        # sample, if larger) plus the rest of the stage, extrapolated linearly.
        index0, index1, index_at = ((_index_mib(row) if stage == "dedup" else 0.0) for row in (first, last, {"n": PAPER_POSTS}))
        per_post = ((m1 - index1) - (m0 - index0)) / (last["n"] - first["n"]) * 2**20  # bytes per post, besides the index
        rest_at = (m1 - index1) + per_post * (PAPER_POSTS - last["n"]) / 2**20
        growth[stage] = {
            "time_exponent": exponent,
            "seconds_at_3_7M": t1 * (PAPER_POSTS / last["n"]) ** exponent,
            "memory_bytes_per_post": per_post,
            "index_mib_at_3_7M": index_at,
            "peak_rss_gib_at_3_7M": (rest_at + index_at) / 1024,
            "peak_rss_gib_at_3_7M_linear": (m1 + (m1 - m0) / (last["n"] - first["n"]) * (PAPER_POSTS - last["n"])) / 1024,
        }
    return growth


def table(result: dict[str, Any]) -> str:
    """The scale result as the markdown table of ``docs/benchmarks.md``."""
    rows, growth = result["rows"], result["growth"]
    head = ["stage", *(f"{r['n']:,} posts" for r in rows), "time exponent", "bytes per post",
            "3.7 M: time", "3.7 M: peak RSS", "3.7 M: peak RSS, linear"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for stage, g in growth.items():
        cells = [f"{r['stages'][stage]['seconds']:,.0f} s, {r['stages'][stage]['peak_rss_mib']:,.0f} MiB" for r in rows]
        lines.append("| " + " | ".join([stage, *cells, f"{g['time_exponent']:.2f}", f"{g['memory_bytes_per_post']:,.0f}",
                                         f"{g['seconds_at_3_7M'] / 3600:.1f} h", f"{g['peak_rss_gib_at_3_7M']:.2f} GiB",
                                         f"{g['peak_rss_gib_at_3_7M_linear']:.2f} GiB"]) + " |")
    return "\n".join(lines)


def _index_mib(row: dict[str, Any]) -> float:
    """MiB the dedup stage's index takes for ``row["n"]`` posts: the larger of its codes and its training (sample and residuals).

    The search input is the posts left after exact dedup (1 % are exact copies); below
    ``ANN_MIN_SIZE`` the exact search runs and there is no index.
    """
    from imgsent.distill.ann import ANN_MIN_SIZE, plan_index

    n = int(row["n"] * 0.99)
    if row["n"] < ANN_MIN_SIZE:
        return 0.0
    plan = plan_index(n, DIM, memory_gb=MEMORY_GB)
    return max(plan.index_bytes, 2 * plan.train_rows * DIM * 4) / 2**20


# -- embed against classify ----------------------------------------------------------------------------------

def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return time.perf_counter() - start


def embed_vs_classify(count: int, root: Path, repeats: int = 2) -> dict[str, Any]:
    folder = make_jpegs(root / f"jpegs-{count}", count, size=(160, 120))
    py = sys.executable
    commands = {
        "classify": [py, "-m", "imgsent", "classify", str(folder), "-o", str(root / "classify.csv"), "--overwrite"],
        "embed_features_engine": [py, "-m", "benchmarks.distill_scale", "embed-child", str(folder), "engine"],
        "embed_torch_before": [py, "-m", "benchmarks.distill_scale", "embed-child", str(folder), "torch-before"],
    }
    for name in ("classify", "embed_features_engine"):  # warm the export caches and the page cache
        _timed(commands[name])
    times: dict[str, list[float]] = {k: [] for k in commands}
    for rep in range(repeats):
        for name, cmd in commands.items():
            if name == "embed_torch_before" and rep:  # no cache to warm, and minutes long: once is enough
                continue
            (root / "classify.csv").unlink(missing_ok=True)
            times[name].append(_timed(cmd))
    best = {k: min(v) for k, v in times.items()}
    return {"images": count, "seconds": times, "best": best,
            "ratio_engine_to_classify": best["embed_features_engine"] / best["classify"],
            "ratio_before_to_classify": best["embed_torch_before"] / best["classify"],
            "load_average_1min": load_average()[0]}


def embed_child(folder: Path, kind: str) -> None:
    """In this process: embed every JPEG of ``folder`` as the dedup stage does (or did before)."""
    import torch

    from imgsent.distill.features import engine_embedder
    from imgsent.models.sentiment import SentimentModel

    paths = sorted(str(p) for p in folder.glob("*.jpg"))
    if kind == "engine":  # as the dedup stage runs it: the model folder, one decoding stream, durable chunks
        import tempfile

        from imgsent.distill.embeddings import build_store
        from imgsent.hub import resolve_model_dir

        embed, key = engine_embedder(resolve_model_dir(None))
        with tempfile.TemporaryDirectory() as store:
            build_store(paths, embed, store, key=key)
        return
    from imgsent.distill.probe import embed_rows
    from imgsent.runtime import default_workers

    device, model = torch.device("cpu"), SentimentModel.from_pretrained()
    embed_rows(model.net, paths, model.config.preprocess, device=device, workers=default_workers(device))


# -- kill and resume -----------------------------------------------------------------------------------------

RESUME_CHUNK = 100
"""Rows per chunk in the kill test: what a kill can lose (at most one chunk in progress), 10 % of 1,000 images."""

def resume_child(folder: Path, workdir: Path) -> None:
    from imgsent.distill.dedup import find_near_duplicates
    from imgsent.distill.features import engine_embedder
    from imgsent.hub import resolve_model_dir

    paths = sorted(str(p) for p in folder.glob("*.jpg"))
    embed, key = engine_embedder(resolve_model_dir(None))  # as the dedup stage reruns: from its model folder
    report = find_near_duplicates(paths, embed, workdir=workdir, model_key=key, chunk_size=RESUME_CHUNK,
                                  progress=lambda done, total: print(f"progress {done} {total}", flush=True))
    print(json.dumps({"kept": len(report.kept), "removed": [d.path for d in report.removed]}), flush=True)


def kill_and_resume(count: int, root: Path) -> dict[str, Any]:
    folder = make_jpegs(root / f"jpegs-{count}", count, size=(160, 120))
    cmd = [sys.executable, "-m", "benchmarks.distill_scale", "resume-child", str(folder)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(["rm", "-rf", str(root / "full"), str(root / "killed")], check=True)
    subprocess.run(cmd + [str(root / "warm")], cwd=REPO, env=env, check=True, capture_output=True)  # export caches
    start = time.perf_counter()
    full = subprocess.run(cmd + [str(root / "full")], cwd=REPO, env=env, check=True, capture_output=True, text=True)
    uninterrupted = time.perf_counter() - start
    proc = subprocess.Popen(cmd + [str(root / "killed")], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    killed_at = 0
    for line in proc.stdout:
        if line.startswith("progress") and int(line.split()[1]) >= 0.6 * count:
            killed_at = int(line.split()[1])
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    start = time.perf_counter()
    rerun = subprocess.run(cmd + [str(root / "killed")], cwd=REPO, env=env, check=True, capture_output=True, text=True)
    resumed = time.perf_counter() - start
    same = full.stdout.splitlines()[-1] == rerun.stdout.splitlines()[-1]
    chunks_same = all((root / "killed" / p.name).read_bytes() == p.read_bytes() for p in (root / "full").glob("chunk-*.npy"))
    return {"images": count, "killed_at": killed_at, "uninterrupted_seconds": uninterrupted, "rerun_seconds": resumed,
            "ratio": resumed / uninterrupted, "same_report": same, "same_chunks": chunks_same,
            "load_average_1min": load_average()[0]}


# -- teacher ---------------------------------------------------------------------------------------------------

def tiny_roberta(folder: Path, *, hidden: int = 128, layers: int = 2, seed: int = 0) -> Path:
    """A random-weight RoBERTa sentiment classifier and a word-level tokenizer, saved offline (no download)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaForSequenceClassification

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocab = {tok: i for i, tok in enumerate(specials + sorted(set(_WORDS)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", mask_token="<mask>", model_max_length=128)
    labels = {0: "negative", 1: "neutral", 2: "positive"}
    config = RobertaConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                           intermediate_size=4 * hidden, max_position_embeddings=136, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, id2label=labels, label2id={v: k for k, v in labels.items()})
    torch.manual_seed(seed)
    RobertaForSequenceClassification(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def teacher_speed(texts: int, root: Path) -> dict[str, Any]:
    """Texts per second of the ``hf`` teacher on the CPU, one text per forward pass against batches of 64."""
    import numpy as np
    import torch

    from imgsent.distill.teacher import HFTeacher

    folder = tiny_roberta(root / "tiny-roberta")
    rng = np.random.default_rng(0)
    corpus = [" ".join(rng.choice(_WORDS, int(rng.integers(4, 60)))) for _ in range(texts)]
    out: dict[str, Any] = {"texts": texts, "model": "RoBERTa, random weights, hidden 128, 2 layers", "device": "cpu",
                           "torch_threads": torch.get_num_threads()}
    for batch in (1, 64):
        teacher = HFTeacher(folder, batch_size=batch, max_length=128)
        start = time.perf_counter()
        teacher.predict_proba(corpus)
        out[f"texts_per_second_batch_{batch}"] = texts / (time.perf_counter() - start)
    out["speedup"] = out["texts_per_second_batch_64"] / out["texts_per_second_batch_1"]
    out["load_average_1min"] = load_average()[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("scale", "embed", "resume", "teacher", "child", "embed-child", "resume-child"))
    parser.add_argument("args", nargs="*")
    parser.add_argument("--sizes", default="50000,300000,1000000")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "imgsent-distill-scale")
    args = parser.parse_args()
    if args.command == "child":
        print(json.dumps(run_child(int(args.args[0]), Path(args.args[1]), Path(args.args[2]), args.args[3])))
        return
    if args.command == "embed-child":
        embed_child(Path(args.args[0]), args.args[1])
        return
    if args.command == "resume-child":
        resume_child(Path(args.args[0]), Path(args.args[1]))
        return
    args.root.mkdir(parents=True, exist_ok=True)
    if args.command == "scale":
        result = scale([int(s) for s in args.sizes.split(",")], args.root)
    elif args.command == "embed":
        result = embed_vs_classify(args.images, args.root, repeats=args.repeats)
    elif args.command == "teacher":
        result = teacher_speed(args.images, args.root)
    else:
        result = kill_and_resume(args.images, args.root)
    write_json(RESULTS / f"distill_scale_{args.command}.json", result)
    print(json.dumps(result, indent=2))
    if args.command == "scale":
        print(table(result))


if __name__ == "__main__":
    main()
