"""Engines (torch, ONNX Runtime, OpenVINO): parity with torch float32, the export cache, ONNX export."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.engines import load_engine, resolve_backend
from imgsent.engines.cache import cache_entries, cached_onnx, folder_key, model_key
from imgsent.errors import InvalidConfigError, MissingExtraError
from imgsent.models.sentiment import SentimentModel
from imgsent.predictor import Predictor, resolve_dtype

pytest.importorskip("onnx", reason="the exported-model engines need onnx, a core dependency: pip install 'imgsent[cpu]'")
CPU = torch.device("cpu")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


@pytest.fixture(scope="module")
def bundled() -> SentimentModel:
    return SentimentModel.from_pretrained(None)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> SentimentModel:
    return SentimentModel.from_pretrained(str(tiny_model_dir))


def _pixels(model: SentimentModel, n: int, seed: int = 0) -> torch.Tensor:
    size = model.config.preprocess.image_size
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("which", [pytest.param("bundled", marks=pytest.mark.slow), "tiny"])
def test_engine_matches_torch_float32(backend, which, request):
    pytest.importorskip(backend)
    model = request.getfixturevalue(which)
    reference = load_engine(model, backend="torch", device=CPU, dtype=torch.float32)
    engine = load_engine(model, backend=backend, device=CPU, dtype=torch.float32)
    assert engine.name == backend
    for n in (1, 2, 5):  # the batch axis is dynamic; OpenVINO cuts 2 into chunks of 1 and 5 into 2, 2, 1
        pixels = _pixels(model, n, seed=n)
        expected, got = reference.forward(pixels), engine.forward(pixels)
        assert got.shape == (n, 3) and got.dtype == torch.float32
        assert (got - expected).abs().max().item() <= 1e-4
        assert torch.equal(got.argmax(-1), expected.argmax(-1))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_predictor_labels_match_torch_on_real_photos(backend):
    pytest.importorskip(backend)
    photos = sorted(str(p) for p in EXAMPLES.glob("*.jpg"))
    torch_rows = Predictor.from_pretrained(device="cpu", backend="torch").predict(photos, workers=0)
    engine = Predictor.from_pretrained(device="cpu", backend=backend)
    rows = engine.predict(photos, workers=0)
    assert engine.backend == backend and engine.dtype == torch.float32
    assert [r.label for r in rows] == [r.label for r in torch_rows]
    assert max(abs(a.positive - b.positive) for a, b in zip(rows, torch_rows)) <= 1e-4


def test_thread_switch_keeps_results(tiny):
    pytest.importorskip("onnxruntime")
    engine = load_engine(tiny, backend="onnxruntime", device=CPU, dtype=torch.float32)
    pixels = _pixels(tiny, 3)
    before = engine.forward(pixels)
    engine.set_threads(1)
    assert engine.threads == 1
    assert torch.allclose(engine.forward(pixels), before, atol=1e-6)


def test_openvino_engines_dropped_in_creation_order_leave_signals_working(tiny_model_dir):
    """OpenVINO swaps the thread's signal stack; dropping engines must never leave a freed one behind."""
    pytest.importorskip("openvino")
    import subprocess

    script = (
        "import faulthandler, gc, os, signal, torch\n"
        "from imgsent.engines import load_engine\n"
        "from imgsent.models.sentiment import SentimentModel\n"
        "faulthandler.enable()  # gives the main thread a signal stack first, as pytest does\n"
        f"model = SentimentModel.from_pretrained({str(tiny_model_dir)!r})\n"
        "engines = [load_engine(model, backend='openvino', device=torch.device('cpu'), dtype=torch.float32) for _ in range(2)]\n"
        "del engines[0]; gc.collect(); del engines[0]; gc.collect()\n"
        "seen = []\n"
        "signal.signal(signal.SIGUSR1, lambda *_: seen.append(1))\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
        "print('handled', len(seen))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split() == ["handled", "1"]


def test_cpu_default_dtype_is_float32():
    assert resolve_dtype("auto", CPU) == torch.float32


def test_auto_backend_choice(monkeypatch):
    assert resolve_backend("auto", torch.device("cuda"), torch.bfloat16) == "torch"
    assert resolve_backend("auto", CPU, torch.float16) == "torch"
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    assert resolve_backend("auto", CPU, torch.float32) == "openvino"  # the fastest exact CPU engine
    assert resolve_backend("auto", CPU, torch.bfloat16) == "openvino"
    monkeypatch.setitem(sys.modules, "openvino", None)  # what find_spec sees when it is not installed
    assert resolve_backend("auto", CPU, torch.float32) == "onnxruntime"
    assert resolve_backend("auto", CPU, torch.bfloat16) == "torch"  # ONNX Runtime runs float32 only


def test_base_install_without_engines_uses_torch(monkeypatch, tiny):
    for module in ("onnxruntime", "openvino"):
        monkeypatch.setitem(sys.modules, module, None)  # what find_spec sees when it is not installed
    assert resolve_backend("auto", CPU, torch.float32) == "torch"
    assert load_engine(tiny, backend="auto", device=CPU, dtype=torch.float32).name == "torch"
    with pytest.raises(MissingExtraError, match=r"pip install 'imgsent\[cpu\]'"):
        resolve_backend("onnxruntime", CPU, torch.float32)


def test_backend_errors():
    with pytest.raises(InvalidConfigError, match="Invalid backend 'tensorrt'. Use one of: auto, torch"):
        resolve_backend("tensorrt", CPU, torch.float32)
    with pytest.raises(InvalidConfigError, match="runs float32, not bfloat16"):
        resolve_backend("onnxruntime", CPU, torch.bfloat16)
    with pytest.raises(InvalidConfigError, match="runs on the CPU only"):
        resolve_backend("openvino", torch.device("cuda"), torch.float32)


def test_cache_key_changes_with_weights_and_config(tiny, tmp_path):
    first = cached_onnx(tiny, cache_dir=tmp_path)
    assert cached_onnx(tiny, cache_dir=tmp_path) == first  # reused
    changed = SentimentModel(tiny.config)
    changed.load_state_dict(tiny.state_dict())
    with torch.no_grad():
        next(changed.parameters()).add_(1e-3)
    assert model_key(changed) != model_key(tiny)
    assert cached_onnx(changed, cache_dir=tmp_path).parent != first.parent


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest"])
def test_corrupt_cache_entry_is_rebuilt(tiny, tmp_path, damage):
    path = cached_onnx(tiny, cache_dir=tmp_path)
    good = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "flip":
        path.write_bytes(good[:-10] + bytes(b ^ 0xFF for b in good[-10:]))
    else:
        (path.parent / "manifest.json").write_text("{not json", encoding="utf-8")
    rebuilt = cached_onnx(tiny, cache_dir=tmp_path)
    assert rebuilt == path and rebuilt.stat().st_size == len(good)
    assert json.loads((path.parent / "manifest.json").read_text())["size"] == len(good)


def test_cli_export_onnx_runs_in_onnxruntime(tiny_model_dir, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "deploy" / "model.onnx"
    result = CliRunner().invoke(app, ["export", "onnx", str(tiny_model_dir), "--output", str(out)])
    assert result.exit_code == 0, result.output
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["imgsent.labels"]) == ["negative", "neutral", "positive"]
    assert (meta["imgsent.image_size"], meta["imgsent.resize_mode"], meta["imgsent.interpolation"]) == ("32", "squash", "bicubic")
    assert json.loads(meta["imgsent.mean"]) == [0.5, 0.5, 0.5]
    model = SentimentModel.from_pretrained(str(tiny_model_dir)).eval()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for n in (1, 4):
        x = torch.rand(n, 3, 32, 32) * 2 - 1  # normalised as the metadata says: (v/255 - 0.5) / 0.5
        (probs,) = session.run(None, {"pixels": x.numpy()})
        with torch.no_grad():
            expected = model(x).softmax(-1).numpy()
        assert probs.shape == (n, 3)
        assert np.abs(probs - expected).max() <= 1e-4
        assert (probs.argmax(-1) == expected.argmax(-1)).all()


def test_cli_export_unknown_model_fails_cleanly(tmp_path):
    result = CliRunner().invoke(app, ["export", "onnx", str(tmp_path / "nope"), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1
    assert "error:" in result.output and not (tmp_path / "m.onnx").exists()


def test_cached_export_skips_building_the_torch_network(tiny_model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    import os
    import subprocess

    script = (
        "import sys; from imgsent.predictor import Predictor; "
        f"p = Predictor.from_pretrained({str(tiny_model_dir)!r}, device='cpu', backend='onnxruntime'); "
        "print(p.backend, 'timm' in sys.modules, p._model is None, p.predict(__import__('torch').zeros(3, 32, 32, dtype=__import__('torch').uint8))[0].label is not None); "
        "print(type(p.model).__name__)"
    )
    env = {**os.environ, "IMGSENT_CACHE": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.splitlines()[0].split()[2:] == ["True", "True"]  # cache miss: built to export, then dropped
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert second.stdout.splitlines() == ["onnxruntime False True True", "SentimentModel"]  # loaded lazily on access


def test_one_cache_key_for_a_model_and_its_folder(tiny, tiny_model_dir, tmp_path, monkeypatch):
    """A loaded model and the folder it came from share one key, so they share one cache entry."""
    pytest.importorskip("onnxruntime")
    assert model_key(tiny) == folder_key(tiny_model_dir)
    monkeypatch.setenv("IMGSENT_CACHE", str(tmp_path))
    from_model = load_engine(tiny, backend="onnxruntime", device=CPU, dtype=torch.float32)
    from_folder = load_engine(tiny_model_dir, backend="onnxruntime", device=CPU, dtype=torch.float32)
    assert from_model.path == from_folder.path
    assert [e.key for e in cache_entries()] == [model_key(tiny)]
    assert cache_entries()[0].model == tiny.config.architecture.name and cache_entries()[0].engine_format == "onnx"


def test_key_follows_what_the_graph_depends_on(tiny, tiny_model_dir, tmp_path):
    import dataclasses
    import shutil

    from imgsent.config import ModelConfig

    hotter = SentimentModel(dataclasses.replace(tiny.config, temperature=2.0), net=tiny.net)
    assert model_key(hotter) != model_key(tiny)  # the temperature is in the graph
    half = tmp_path / "half"
    tiny.save_pretrained(half, dtype=torch.float16)
    assert folder_key(half) != folder_key(tiny_model_dir)  # other weights
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    assert folder_key(copy) == folder_key(tiny_model_dir)  # where the folder is does not matter
    assert ModelConfig.load(copy) == tiny.config


def test_one_factory_takes_a_folder_and_builds_torch_from_it(tiny_model_dir):
    engine = load_engine(tiny_model_dir, backend="torch", device=CPU, dtype=torch.float32)
    assert engine.name == "torch" and isinstance(engine.model, SentimentModel)
    from imgsent.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        load_engine(tiny_model_dir.parent / "nope", backend="openvino", device=CPU, dtype=torch.float32)


def test_engine_description_says_how_to_get_the_fast_engine(monkeypatch):
    from rich.console import Console
    from rich.markup import escape

    from imgsent.engines import describe_engine

    assert describe_engine("openvino", device=CPU, dtype=torch.float32) == "openvino"
    assert describe_engine("torch", device=CPU, dtype=torch.float32, requested="torch") == "torch"
    assert describe_engine("torch", device=torch.device("cuda"), dtype=torch.bfloat16) == "torch"
    monkeypatch.setitem(sys.modules, "openvino", None)  # what find_spec sees when it is not installed
    text = describe_engine("torch", device=CPU, dtype=torch.float32)
    assert text.startswith("torch (OpenVINO") and text.count("pip install") == 1
    console = Console(record=True, width=300)
    console.print(escape(text))
    assert "pip install 'imgsent[cpu]'" in console.export_text()  # printed literally, not eaten as markup


def test_classify_header_names_the_engine_and_the_missing_fast_one(monkeypatch, tiny_model_dir, photo_dir):
    args = ["classify", str(photo_dir), "-m", str(tiny_model_dir), "--device", "cpu", "--workers", "0"]
    pytest.importorskip("openvino")
    fast = CliRunner().invoke(app, args)
    assert ", engine openvino; " in fast.stderr
    monkeypatch.setitem(sys.modules, "openvino", None)  # what find_spec sees when it is not installed
    slow = CliRunner().invoke(app, args)
    header = slow.stderr.splitlines()[0]
    assert "is not installed: pip install 'imgsent[cpu]');" in header and header.count("pip install") == 1


@pytest.mark.slow
def test_default_engine_benchmark_runs(tmp_path):
    import os
    import subprocess

    out = tmp_path / "result.json"
    env = {**os.environ, "IMGSENT_CACHE": str(tmp_path / "cache")}
    subprocess.run([sys.executable, "-m", "benchmarks.default_engine", "--images", "3", "--rounds", "1",
                    "--source", str(EXAMPLES), "--output", str(out)], env=env, check=True, capture_output=True, timeout=600,
                   cwd=Path(__file__).resolve().parents[1])
    record = json.loads(out.read_text())
    assert record["images"] == 3 and record["compared"] == 3 and record["labels_equal"] == 3
    assert "engine openvino" in record["headers"]["default"] and record["max_abs_probability_difference"] <= 1e-4
