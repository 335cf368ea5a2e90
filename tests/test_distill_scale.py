"""Near-duplicate removal at scale: durable embedding chunks, resume, groups, engines, and recipe errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.distill.dedup import DedupReport, deduplicate, find_near_duplicates, iter_groups
from imgsent.distill.embeddings import build_store, store_key
from imgsent.distill.recipe import load_recipe
from imgsent.distill.records import TrainConfig
from imgsent.errors import InvalidConfigError


def _table_embed(vectors: np.ndarray):
    calls: list[int] = []

    def embed(paths: list[str]) -> np.ndarray:
        calls.append(len(paths))
        return vectors[[int(p) for p in paths]]

    embed.calls = calls  # type: ignore[attr-defined]
    return embed


def _planted(n: int = 400, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for k in range(0, 60, 2):  # near duplicates at distance ~0.05-0.1, and near misses at ~0.2
        scale = (0.05 if k % 4 == 0 else 0.2) / np.sqrt(dim)
        x[n - 1 - k] = x[k] + scale * rng.standard_normal(dim)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_store_resumes_after_an_interruption_and_gives_identical_chunks(tmp_path: Path) -> None:
    vectors = _planted()
    paths = [str(i) for i in range(len(vectors))]
    key = store_key(paths, "m")

    def failing(names: list[str]) -> np.ndarray:
        if int(names[0]) >= 200:
            raise KeyboardInterrupt  # the run stops after two chunks
        return vectors[[int(p) for p in names]]

    with pytest.raises(KeyboardInterrupt):
        build_store(paths, failing, tmp_path / "a", key=key, batch_size=100, chunk_size=100)
    assert sorted(p.name for p in (tmp_path / "a").glob("chunk-*")) == ["chunk-000000.npy", "chunk-000001.npy"]
    embed = _table_embed(vectors)
    seen: list[tuple[int, int]] = []
    store = build_store(paths, embed, tmp_path / "a", key=key, batch_size=100, chunk_size=100,
                        progress=lambda done, total: seen.append((done, total)))
    assert embed.calls == [100, 100]  # only the two missing chunks
    assert seen == [(200, 400), (300, 400), (400, 400)]
    build_store(paths, _table_embed(vectors), tmp_path / "b", key=key, batch_size=100, chunk_size=100)
    for k in range(store.chunks):
        assert (tmp_path / "a" / f"chunk-{k:06d}.npy").read_bytes() == (tmp_path / "b" / f"chunk-{k:06d}.npy").read_bytes()
    # another key (other paths or model) starts afresh
    other = _table_embed(vectors)
    build_store(paths, other, tmp_path / "a", key=store_key(paths, "other"), batch_size=100, chunk_size=100)
    assert other.calls == [100] * 4


class _Streaming:
    """An embedder with ``stream``: rows come in blocks of 37, whatever the chunk size."""

    def __init__(self, vectors: np.ndarray, extra: int = 0) -> None:
        self.vectors, self.extra, self.streams = vectors, extra, []

    def __call__(self, paths: list[str]) -> np.ndarray:
        raise AssertionError("build_store must use stream()")

    def stream(self, paths):
        names = list(paths)
        self.streams.append(names)
        rows = self.vectors[[int(p) for p in names]]
        rows = np.concatenate([rows, rows[: self.extra]]) if self.extra >= 0 else rows[: self.extra]
        for start in range(0, len(rows), 37):
            yield rows[start : start + 37]


def test_a_streaming_embedder_gets_every_missing_row_in_one_stream(tmp_path: Path) -> None:
    from imgsent.errors import EmbeddingError

    vectors = _planted()
    paths = [str(i) for i in range(len(vectors))]
    key = store_key(paths, "m")
    whole = build_store(paths, _table_embed(vectors), tmp_path / "whole", key=key, chunk_size=100)
    build_store(paths, _table_embed(vectors), tmp_path / "partial", key=key, chunk_size=100)
    for k in (1, 3):
        (tmp_path / "partial" / f"chunk-{k:06d}.npy").unlink()
    seen: list[int] = []
    streaming = _Streaming(vectors)
    build_store(paths, streaming, tmp_path / "partial", key=key, chunk_size=100, progress=lambda d, t: seen.append(d))
    assert streaming.streams == [paths[100:200] + paths[300:400]]  # one stream, only the missing rows, in order
    assert seen[0] == 200 and seen[-1] == 400 and seen == sorted(seen)
    for k in range(whole.chunks):
        name = f"chunk-{k:06d}.npy"
        assert (tmp_path / "partial" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    for extra, message in ((-5, "fewer rows"), (3, "more rows")):
        with pytest.raises(EmbeddingError, match=message):
            build_store(paths, _Streaming(vectors, extra), tmp_path / f"bad{extra}", key=key, chunk_size=100)


def test_embedder_from_a_model_folder_builds_no_network_once_its_export_is_cached(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("openvino")
    from imgsent.distill.features import engine_embedder
    from imgsent.hub import resolve_model_dir
    from imgsent.models.sentiment import SentimentModel

    folder = resolve_model_dir(None)
    images = sorted(str(p) for p in Path("examples/images").glob("*.jpg"))[:3]
    (tmp_path / "broken.jpg").write_bytes(b"not a picture")
    paths = images + [str(tmp_path / "broken.jpg")]
    from_model, model_key = engine_embedder(SentimentModel.from_folder(folder), backend="openvino", workers=0)
    expected = from_model(paths)

    def no_network(*args, **kwargs):
        raise AssertionError("the torch network was built")

    monkeypatch.setattr(SentimentModel, "from_folder", no_network)
    monkeypatch.setattr(SentimentModel, "__init__", no_network)
    from_folder, folder_key = engine_embedder(folder, backend="openvino", workers=0, batch_size=2)
    assert folder_key == model_key
    blocks = list(from_folder.stream(iter(paths)))
    assert [len(b) for b in blocks] == [2, 2]
    np.testing.assert_array_equal(np.concatenate(blocks), expected)
    assert abs(float(np.linalg.norm(expected[-1])) - 1.0) < 1e-5  # the unreadable image: a direction of its own


def test_faiss_and_exact_find_the_same_groups_on_planted_duplicates(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    vectors = _planted(n=3000, dim=64)
    paths = [str(i) for i in range(len(vectors))]
    exact = find_near_duplicates(paths, _table_embed(vectors), search="exact", block_size=1000, chunk_size=500)
    approx = find_near_duplicates(paths, _table_embed(vectors), search="faiss", chunk_size=500, nlist=16, nprobe=4,
                                  memory_gb=0.001)  # a tiny budget: 4-bit codes
    assert len(exact.removed) == 15  # the planted duplicates, not the near misses
    assert approx.removed == exact.removed and approx.links == exact.links


def test_groups_list_every_member_and_link() -> None:
    vectors = _planted()
    paths = [str(i) for i in range(len(vectors))]
    report = find_near_duplicates(paths, _table_embed(vectors), search="exact")
    groups = list(iter_groups(report))
    assert len(groups) == len(report.removed) == 15
    for group in groups:
        (member,) = group["members"]
        assert group["links"] == [[group["kept"], member["path"], member["distance"]]]
        assert 0 < member["distance"] < 0.15
    assert list(iter_groups(DedupReport())) == []


def test_every_engine_keeps_the_same_images(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    from PIL import Image

    from imgsent.distill.features import engine_embedder
    from imgsent.models.sentiment import SentimentModel

    paths = []
    for i, name in enumerate(sorted(Path("examples/images").glob("*.jpg"))):
        image = Image.open(name).convert("RGB")
        image.save(tmp_path / f"{i}.jpg", quality=95)
        image.resize((image.width // 2, image.height // 2)).save(tmp_path / f"{i}_small.jpg", quality=70)
        paths += [str(tmp_path / f"{i}.jpg"), str(tmp_path / f"{i}_small.jpg")]
    model = SentimentModel.from_pretrained()
    kept = {}
    for backend in ("torch", "onnxruntime", "openvino"):
        embed, _ = engine_embedder(model, backend=backend, workers=0)
        kept[backend] = deduplicate(paths, embed=embed, threshold=0.5, search="exact").kept
    assert len(kept["torch"]) < len(paths)  # the resized copies are found
    assert kept["onnxruntime"] == kept["torch"] == kept["openvino"]


def test_recipe_train_is_a_train_config_and_dedup_settings_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("corpus: {path: c.jsonl}\ntrain: {epochs: 2}\ndedup: {search: faiss, nprobe: 32}\n")
    recipe = load_recipe(path)
    assert isinstance(recipe.train, TrainConfig) and recipe.train.epochs == 2
    assert (recipe.dedup.search, recipe.dedup.nprobe) == ("faiss", 32)
    path.write_text("corpus: {path: c.jsonl}\ndedup: {threshold: high}\n")
    with pytest.raises(InvalidConfigError, match=r"recipe.dedup.threshold must be a number, got 'high'"):
        load_recipe(path)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("r.json", '{"corpus": {"path": "c.jsonl"},}', r"r.json is not valid JSON: Expecting property name"),
        ("r.yaml", "corpus: {path: c.jsonl\n", r"r.yaml is not valid YAML at line 2"),
        ("r.yaml", "corpus: {path: c.jsonl}\ntrain: {lr: -1}\n", r"recipe.train.lr must be a float in \[0.0, inf\], got -1"),
        ("r.yaml", "corpus: {path: c.jsonl}\ntrain: {epoch: 1}\n", r"Unknown key\(s\) \['epoch'\] in recipe.train"),
        ("r.yaml", "corpus: {path: c.jsonl}\ndedup: {search: annoy}\n", r"recipe.dedup.search must be one of"),
    ],
)
def test_recipe_errors_exit_2_with_one_line_before_any_stage(tmp_path: Path, name: str, text: str, message: str) -> None:
    import re

    (tmp_path / name).write_text(text)
    result = CliRunner().invoke(app, ["distill", "run", str(tmp_path / name), "-d", str(tmp_path / "w")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(message, " ".join(result.output.split())), result.output
    assert not (tmp_path / "w").exists()


_WORKER = """
import sys, time
import numpy as np
from imgsent.distill.dedup import find_near_duplicates
vectors = np.random.default_rng(0).standard_normal((2000, 16)).astype(np.float32)
vectors[1999] = vectors[0]
def embed(paths):
    time.sleep(0.05 * len(paths) / 100)  # a slow embedding: 1 s in all
    return vectors[[int(p) for p in paths]]
report = find_near_duplicates([str(i) for i in range(2000)], embed, workdir=sys.argv[1], batch_size=100,
                              chunk_size=100, search="exact", progress=lambda d, t: print(d, flush=True))
print("removed", [d.path for d in report.removed], flush=True)
"""


@pytest.mark.slow
def test_sigkill_at_60_percent_then_rerun_embeds_only_the_rest(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    start = time.perf_counter()
    full = subprocess.run([sys.executable, str(script), str(tmp_path / "full")], env=env, capture_output=True, text=True, check=True)
    uninterrupted = time.perf_counter() - start
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "killed")], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip().isdigit() and int(line) >= 1200:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(list((tmp_path / "killed").glob("chunk-*.npy"))) >= 11  # the chunk in flight is lost
    start = time.perf_counter()
    rerun = subprocess.run([sys.executable, str(script), str(tmp_path / "killed")], env=env, capture_output=True, text=True, check=True)
    resumed = time.perf_counter() - start
    assert int(rerun.stdout.splitlines()[0]) >= 1100  # the first progress report: the kept chunks are not redone
    assert rerun.stdout.splitlines()[-1] == full.stdout.splitlines()[-1] == "removed ['1999']"
    for chunk in (tmp_path / "full").glob("chunk-*.npy"):
        assert chunk.read_bytes() == (tmp_path / "killed" / chunk.name).read_bytes()
    print(json.dumps({"uninterrupted_s": uninterrupted, "rerun_s": resumed, "ratio": resumed / uninterrupted}))


def test_dedup_stage_writes_groups_and_reports_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("vaderSentiment")
    import yaml
    from PIL import Image

    from imgsent.distill.pipeline import DistillRun

    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(6):
        pixels = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)  # smooth pictures, far apart
        Image.fromarray(pixels).resize((128, 96), Image.BICUBIC).save(tmp_path / "img" / f"{i}.png")
        rows.append({"id": str(i), "text": "a happy sunny day here", "images": [f"img/{i}.png"]})
    Image.open(tmp_path / "img" / "0.png").save(tmp_path / "img" / "0_again.jpg", quality=95)  # a near duplicate
    rows.append({"id": "again", "text": "a happy sunny day here", "images": ["img/0_again.jpg"]})
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = {"corpus": {"path": "corpus.jsonl", "lang": None, "min_words": 3},
              "dedup": {"threshold": 0.2, "search": "exact", "backend": "torch"},
              "student": {"architecture": "efficientnet_lite0", "image_size": 64}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    seen: list[tuple[str, int, int]] = []
    DistillRun(load_recipe(tmp_path / "r.yaml"), tmp_path / "w",
               on_progress=lambda *event: seen.append(event)).run(until="dedup")
    groups = [json.loads(line) for line in (tmp_path / "w" / "dedup" / "groups.jsonl").read_text().splitlines()]
    assert [(g["kept"].endswith("0.png"), [m["path"].endswith("0_again.jpg") for m in g["members"]]) for g in groups] == [
        (True, [True])]
    assert len(groups[0]["links"]) == 1 and groups[0]["links"][0][2] < 0.2
    assert seen[-1] == ("dedup", 7, 7)
    assert len(list((tmp_path / "w" / "dedup" / "embeddings").glob("chunk-*.npy"))) == 1
    # Interrupted before it finished: the rerun embeds from the saved student folder, building no new student.
    (tmp_path / "w" / "dedup" / "done.json").unlink()
    (tmp_path / "w" / "dedup" / "embeddings" / "chunk-000000.npy").unlink()
    monkeypatch.setattr(DistillRun, "_new_student", lambda self: pytest.fail("the student was built again"))
    DistillRun(load_recipe(tmp_path / "r.yaml"), tmp_path / "w").run(until="dedup")
    again = [json.loads(line) for line in (tmp_path / "w" / "dedup" / "groups.jsonl").read_text().splitlines()]
    assert again == groups
