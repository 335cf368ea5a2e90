"""Paper models without network: offline mode, an unreachable server, a missing h5py.

Each case must fail at once with one line that says what to run where and which folder to copy,
without huggingface_hub's retry messages and without promising a resume when nothing came.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.errors import ConversionError, HubError, MissingExtraError, ModelNotFoundError
from imgsent.hub.release import release_cache, release_url
from imgsent.registry import KNOWN_MODELS
from tests.hubserver import HubServer
from tests.test_convert_paper import ReleaseServer, resolve_model_dir, server  # noqa: F401 - the fixture

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A mirror URL on 127.0.0.1 whose port was just closed (a Hub server that went away)."""
    with HubServer() as gone:
        url = gone.url
    monkeypatch.setenv("IMGSENT_PAPER_MODELS_URL", url)
    monkeypatch.setenv("IMGSENT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return url


def test_unreachable_server_fails_once_with_the_fix(unreachable: str, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    with pytest.raises(HubError) as info:
        resolve_model_dir("paper-vit-b32")
    message = str(info.value)
    assert message.startswith(f"Cannot reach {unreachable}/ViT_B32.h5 (")
    assert "nothing was downloaded" in message and "resume" not in message
    assert "run `imgsent download paper-vit-b32`, then copy its folder ~/.cache/imgsent/paper/paper-vit-b32" in message
    assert "IMGSENT_PAPER_MODELS_URL" in message and "\n" not in message
    assert not [r for r in caplog.records if "resume" in r.getMessage().lower()]
    assert not list((tmp_path / "cache").rglob("*.incomplete"))


def test_classify_with_an_unreachable_server_prints_one_line(unreachable: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["classify", str(EXAMPLES), "--model", "paper-vit-b32", "-o", str(tmp_path / "out.csv")]
    )
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: Cannot reach ") and "imgsent download paper-vit-b32" in lines[0]
    assert "Trying to resume" not in result.output and "run the same command again" not in result.output


def test_classify_offline_prints_one_line_and_makes_no_request(
    server: ReleaseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(
        app, ["classify", str(EXAMPLES), "--model", "paper-vit-b32", "-o", str(tmp_path / "out.csv")]
    )
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "downloads are off (HF_HUB_OFFLINE=1" in lines[0]
    assert f"to {tmp_path / 'cache' / 'paper' / 'paper-vit-b32'} here" in lines[0]
    assert server.requests == [] and server.probes == []


def test_missing_h5py_is_reported_before_any_download(
    server: ReleaseServer, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "h5py" else find_spec(name, *a))
    with pytest.raises(MissingExtraError, match=r"pip install 'imgsent\[convert\]'"):
        resolve_model_dir("paper-vit-b32")
    assert server.requests == [] and server.probes == []


def test_without_a_converter_only_a_converted_folder_is_found(server: ReleaseServer) -> None:  # noqa: F811
    from imgsent.hub import resolve_model_dir as hub_resolve

    with pytest.raises(ModelNotFoundError, match="no converter was given.*Predictor.from_pretrained"):
        hub_resolve("paper-vit-b32")
    assert server.requests == []
    folder = resolve_model_dir("paper-vit-b32")
    assert hub_resolve("paper-vit-b32") == folder


def test_release_cache_and_url_follow_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMGSENT_CACHE", str(tmp_path))
    monkeypatch.setenv("IMGSENT_PAPER_MODELS_URL", "http://mirror.example/files/")
    assert release_cache() == tmp_path / "paper"
    assert release_cache(tmp_path / "x") == tmp_path / "x" / "imgsent-paper"
    assert release_url(KNOWN_MODELS["paper-vit-l16"]) == "http://mirror.example/files/ViT_L16.h5"


def test_a_release_with_a_known_sha256_refuses_other_bytes(
    server: ReleaseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    import dataclasses
    import hashlib

    from tests.test_convert_paper import PAYLOAD

    release = KNOWN_MODELS["paper-vit-b32"]
    monkeypatch.setitem(KNOWN_MODELS, "paper-vit-b32", dataclasses.replace(release, sha256="0" * 64))
    with pytest.raises(ConversionError, match=r"does not match the release's sha256 0{64}; the download was deleted"):
        resolve_model_dir("paper-vit-b32")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    good = dataclasses.replace(release, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setitem(KNOWN_MODELS, "paper-vit-b32", good)
    assert (resolve_model_dir("paper-vit-b32") / "model.safetensors").is_file()
