"""Security: safetensors only, nothing unpickled, no remote code, contained paths, no leaked tokens,
untrusted config.json validated before anything is built."""

from __future__ import annotations

import ast
import copy
import json
import math
import os
import pickle  # only to craft a hostile file that imgsent must refuse
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_photo, tiny_config

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "imgsent"
TOKEN = "hf_ReliabilitySecret0123456789"
TORCH_LOAD_ALLOWED = {"imgsent/distill/backbones.py"}


def _sources() -> list[tuple[str, str]]:
    return [(p.relative_to(REPO).as_posix(), p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.rglob("*.py"))]


class _Hostile:
    """Unpickling this creates ``marker``: proof that something unpickled the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def hostile_pickle(marker: Path) -> bytes:
    return pickle.dumps({"state_dict": _Hostile(marker)})


# ============================================================================ source checks


def test_package_never_imports_pickle_or_trusts_remote_code() -> None:
    checked = 0
    for path, text in _sources():
        tree = ast.parse(text, path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                names = []
            assert not set(names) & {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}, path
            if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
                assert isinstance(node.value, ast.Constant) and node.value.value is False, f"{path}:{node.value.lineno}"
        assert "trust_remote_code=True" not in text, path
        checked += 1
    assert checked > 20


def test_torch_load_only_in_backbones_and_only_weights_only() -> None:
    found = []
    for path, text in _sources():
        for node in ast.walk(ast.parse(text, path)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                assert path in TORCH_LOAD_ALLOWED, f"torch.load in {path}:{node.lineno}"
                kwargs = {k.arg: k.value for k in node.keywords}
                assert isinstance(kwargs.get("weights_only"), ast.Constant) and kwargs["weights_only"].value is True
                found.append(path)
    assert found == sorted(TORCH_LOAD_ALLOWED)


def test_transformers_models_load_safetensors_only() -> None:
    calls = 0
    for path, text in _sources():
        if "transformers" not in text:
            continue
        for node in ast.walk(ast.parse(text, path)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id.startswith(("Auto", "ViT")) \
                    and "Tokenizer" not in node.func.value.id:
                kwargs = {k.arg: k.value for k in node.keywords}
                assert isinstance(kwargs.get("use_safetensors"), ast.Constant) and kwargs["use_safetensors"].value is True, \
                    f"{path}:{node.lineno} may fall back to pickle weights"
                calls += 1
    assert calls >= 2


# ============================================================================ pickle weights refused


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pkl", "model.pth", "model.ckpt"])
def test_local_folder_with_only_pickle_weights_is_refused(tmp_path, name) -> None:
    from imgsent.errors import UnsafeWeightsError
    from imgsent.models.sentiment import SentimentModel

    folder = tmp_path / "model"
    folder.mkdir()
    tiny_config().save(folder)
    marker = tmp_path / "UNPICKLED"
    (folder / name).write_bytes(hostile_pickle(marker))
    with pytest.raises(UnsafeWeightsError, match=rf"(?s)pickle weights \['{name}'\].*never unpickles.*save_file"):
        SentimentModel.from_pretrained(str(folder))
    assert not marker.exists()


def test_pickle_disguised_as_safetensors_is_refused_unread(tmp_path) -> None:
    from imgsent.errors import InvalidConfigError
    from imgsent.models.sentiment import SentimentModel

    folder = tmp_path / "model"
    folder.mkdir()
    tiny_config().save(folder)
    marker = tmp_path / "UNPICKLED"
    (folder / "model.safetensors").write_bytes(hostile_pickle(marker))
    with pytest.raises(InvalidConfigError, match="is not a readable safetensors file"):
        SentimentModel.from_pretrained(str(folder))
    assert not marker.exists()


@pytest.mark.parametrize("name", ["model.pt", "weights.pkl"])
def test_hub_repo_with_only_pickle_weights_is_refused(tmp_path, name) -> None:
    from imgsent.errors import UnsafeWeightsError
    from imgsent.hub import resolve_model_dir
    from tests.hubserver import HubServer
    from tests.test_reliability import hub_settings

    marker = tmp_path / "UNPICKLED"
    with HubServer() as server, hub_settings(HF_HUB_OFFLINE=False, HF_HUB_DISABLE_PROGRESS_BARS=True):
        server.commit("acme/pickled", {"config.json": json.dumps(tiny_config().to_dict()).encode(),
                                       name: hostile_pickle(marker)}, create=True)
        with pytest.raises(UnsafeWeightsError, match=rf"only has pickle weights \['{name}'\]\. imgsent never unpickles"):
            resolve_model_dir("acme/pickled", cache_dir=tmp_path / "cache", endpoint=server.url)
    assert not marker.exists()
    assert not any(p.name == name for p in (tmp_path / "cache").rglob("*"))


# ============================================================================ paths and URLs


def test_corpus_image_paths_cannot_escape_the_root(tmp_path) -> None:
    from imgsent.distill.corpus import read_corpus

    root = tmp_path / "corpus"
    (root / "img").mkdir(parents=True)
    make_photo(root / "img" / "ok.jpg")
    outside = make_photo(tmp_path / "secret.jpg")
    os.symlink(outside, root / "img" / "link_out.jpg")
    refs = {
        "ok": "img/ok.jpg", "dotdot": "../secret.jpg", "deep_dotdot": "img/../../secret.jpg",
        "absolute": str(outside), "symlink_out": "img/link_out.jpg", "etc": "/etc/passwd",
        "file_url": "file:///etc/passwd", "ftp": "ftp://example.com/a.jpg", "nul": "img/ok.jpg\x00.png",
    }
    text = "a long enough sentence with many words in it"
    lines = [json.dumps({"id": key, "text": text, "images": [ref]}) for key, ref in refs.items()]
    (root / "c.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    reader = read_corpus(root / "c.jsonl", lang=None, min_words=1)
    posts = list(reader)
    assert [p.id for p in posts] == ["ok"]
    assert all(Path(i).resolve().is_relative_to(root.resolve()) for p in posts for i in p.images)
    dropped = reader.report.images_dropped
    assert dropped["path_escape"] == 5 and dropped["bad_scheme"] == 2 and dropped["bad_path"] == 1


def test_fetch_accepts_only_http_and_https(tmp_path) -> None:
    from imgsent.distill.fetch import fetch_images

    urls = ["file:///etc/passwd", "ftp://127.0.0.1/a.png", "data:image/png;base64,AAAA", "gopher://x/", "javascript:x"]
    report = fetch_images(urls, tmp_path / "images", retries=0)
    assert report.failures == {"bad_scheme": len(urls)}
    assert not any((tmp_path / "images").glob("*")) if (tmp_path / "images").exists() else True


# ============================================================================ tokens


def test_typer_apps_never_print_locals() -> None:
    from imgsent.cli.app import app

    from imgsent.cli.app import GROUPS

    groups = [group.typer_instance for group in app.registered_groups]
    assert len(groups) == len(GROUPS) >= 3
    assert all(typer_app.pretty_exceptions_show_locals is False for typer_app in [app, *groups])


@pytest.mark.slow
def test_cli_failures_never_print_the_token(tmp_path) -> None:
    from tests.conftest import make_photo
    from tests.hubserver import HubServer

    make_photo(tmp_path / "a.jpg")  # classify checks its inputs before loading the model

    with HubServer(token=TOKEN) as server:
        server.create_repo("acme/secret", private=True)
        url = server.url
        env = {**os.environ, "HF_ENDPOINT": url, "HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": TOKEN,
               "HF_HUB_DISABLE_PROGRESS_BARS": "1", "COLUMNS": "300"}
        env.pop("HF_HUB_OFFLINE", None)
        runs = [
            ["download", "acme/missing", "--token", TOKEN + "x"],
            ["download", "acme/secret", "--token", "hf_WrongToken999"],
            ["classify", str(tmp_path), "-m", "acme/missing", "--device", "cpu"],
        ]
        outputs = []
        for args in runs:
            done = subprocess.run([sys.executable, "-m", "imgsent", *args], env=env, capture_output=True, text=True,
                                  timeout=120)
            outputs.append((done.returncode, done.stdout + done.stderr))
    for (code, text), args in zip(outputs, runs):
        assert code == 1, (args, text)
        assert "error:" in text and "Traceback" not in text, text
        assert TOKEN not in text and "hf_WrongToken999" not in text, text


# ============================================================================ untrusted config.json

_ODD_VALUES: list[Any] = [None, True, False, 0, -1, 1, 2**63, -(2**63), 10**100, 0.5, -0.0, math.nan, math.inf, -math.inf,
                          "", "x", "vit_b16", "efficientnet_lite0", "squash", "bicubic", "\x00", "é" * 1000, [], [1, 2, 3],
                          [0.5, 0.5, 0.5], [math.nan] * 3, {}, {"a": 1}, [[]], {"name": None}, 3.0, 16, 2048, 4096]


def _mutate(data: Any, rng: random.Random, depth: int = 0) -> Any:
    """Return a randomly damaged copy of a JSON-like value."""
    if isinstance(data, dict) and data and rng.random() < 0.8:
        out = dict(data)
        key = rng.choice(sorted(out))
        roll = rng.random()
        if roll < 0.2:
            del out[key]
        elif roll < 0.3:
            out[rng.choice(["extra", "args", "name", "__class__", key + "_"])] = rng.choice(_ODD_VALUES)
        elif roll < 0.6 and depth < 4:
            out[key] = _mutate(out[key], rng, depth + 1)
        else:
            out[key] = copy.deepcopy(rng.choice(_ODD_VALUES))
        return out
    if isinstance(data, list) and data and rng.random() < 0.7:
        out_list = list(data)
        i = rng.randrange(len(out_list))
        roll = rng.random()
        if roll < 0.3:
            del out_list[i]
        elif roll < 0.5:
            out_list.append(rng.choice(_ODD_VALUES))
        else:
            out_list[i] = copy.deepcopy(rng.choice(_ODD_VALUES))
        return out_list
    return copy.deepcopy(rng.choice(_ODD_VALUES))


def _valid_dicts() -> list[dict[str, Any]]:
    from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig

    return [
        tiny_config().to_dict(),
        ModelConfig(ArchitectureConfig("efficientnet_lite0", {"head_hidden": 16, "dropout": 0.1}), PreprocessConfig()).to_dict(),
    ]


def fuzz_model_config(iterations: int, seed: int = 0) -> dict[str, int]:
    """Feed mutated config dicts (and raw JSON texts) to ModelConfig; count outcomes.

    Raises:
        AssertionError: Something other than an ImgsentError escaped.
    """
    from imgsent.config import ModelConfig
    from imgsent.errors import ImgsentError

    rng = random.Random(seed)
    counts = {"accepted": 0, "refused": 0}
    bases = _valid_dicts()
    for i in range(iterations):
        data: Any = rng.choice(bases)
        for _ in range(rng.randint(1, 4)):
            data = _mutate(data, rng)
        try:
            ModelConfig.from_dict(data)
            counts["accepted"] += 1
        except ImgsentError:
            counts["refused"] += 1
        except Exception as exc:  # noqa: BLE001 - the point of the fuzz
            raise AssertionError(f"iteration {i}: {type(exc).__name__}: {exc} for {data!r:.300}") from exc
    return counts


def test_fuzzed_config_dicts_only_raise_imgsent_errors() -> None:
    counts = fuzz_model_config(3000)
    assert counts["refused"] > 1000 and counts["accepted"] > 50, counts


def test_damaged_config_files_only_raise_imgsent_errors(tmp_path) -> None:
    from imgsent.config import ModelConfig
    from imgsent.errors import ImgsentError

    good = json.dumps(tiny_config().to_dict()).encode()
    rng = random.Random(1)
    damaged = [b"", b"\xff\xfe\x00", b"[]", b"null", b"1e999999", b'{"architecture": {"name": "vit_b16", "args": ' * 200,
               good[: len(good) // 2], good.replace(b"vit_b16", b"vit_b99"), good + b"}", b'"' + b"a" * 10000]
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 5)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        damaged.append(bytes(data))
    for blob in damaged:
        (tmp_path / "config.json").write_bytes(blob)
        try:
            ModelConfig.load(tmp_path)
        except ImgsentError:
            pass


def test_config_asking_for_a_giant_network_is_refused_before_building() -> None:
    from imgsent.config import ModelConfig
    from imgsent.errors import InvalidConfigError

    data = tiny_config().to_dict()
    data["architecture"]["args"].update(hidden_size=4096, num_hidden_layers=64, num_attention_heads=64,
                                        intermediate_size=16384)
    with pytest.raises(InvalidConfigError, match="parameters"):
        ModelConfig.from_dict(data)  # never build it: it would need about 50 GB
