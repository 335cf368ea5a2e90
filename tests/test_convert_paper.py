"""Paper models by name: download from a real local HTTP server (with faults), convert once, cache.

The server on 127.0.0.1 serves a small Keras fixture under the release's file name; the
``vit-b32`` preset is pointed at that fixture's shapes, so every other step is the real one.
Downloads go through :mod:`imgsent.hub.release`; the converter is :data:`imgsent.convert.paper.CONVERTER`.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from huggingface_hub import constants as hf_constants
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.convert import keras as keras_convert
from imgsent.convert.paper import CONVERTER, paper_model_dir
from imgsent.errors import ConversionError, HubError, ModelNotFoundError
from imgsent.hub import resolve_model_dir as hub_resolve
from imgsent.predictor import Predictor
from tests.conftest import make_photo
from tests.test_convert_keras import FIXTURES, tiny_preset

PAYLOAD = (FIXTURES / "tiny_unit_model.h5").read_bytes()


def resolve_model_dir(name: str, **options: object) -> Path:
    """The hub's resolver with imgsent's converter, as Predictor and SentimentModel call it."""
    return hub_resolve(name, convert=CONVERTER, **options)


class ReleaseServer:
    """Serves ``/ViT_B32.h5`` with Range support; ``mode`` injects faults into downloads.

    A closed range (``bytes=S-E``) is the client's one-byte probe before a download: it is
    answered with that slice and counted in ``probes``; ``requests`` holds the downloads.
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[str | None] = []  # the Range header of every download request
        self.probes: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                wanted = self.headers.get("Range")
                probe = wanted is not None and not wanted.endswith("-")
                (outer.probes if probe else outer.requests).append(wanted)
                if outer.mode == "404" or self.path != "/ViT_B32.h5":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = PAYLOAD[: len(PAYLOAD) // 3] if outer.mode == "short-file" else PAYLOAD
                if probe:
                    first, last = (int(v) for v in wanted[6:].split("-"))
                    part = body[first : last + 1]
                    self.send_response(206 if part else 416)
                    self.send_header("Content-Range", f"bytes {first}-{first + len(part) - 1}/{len(body)}")
                    self.send_header("Content-Length", str(len(part)))
                    self.end_headers()
                    self.wfile.write(part)
                    return
                start = int(self.headers["Range"][6:].split("-")[0]) if self.headers.get("Range") else 0
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if outer.mode in ("cut-once", "cut-always") and start == 0:
                    self.wfile.write(body[: len(body) // 2])  # then the connection drops
                    self.wfile.flush()
                    self.close_connection = True
                    if outer.mode == "cut-once":
                        outer.mode = "ok"
                    return
                if outer.mode == "cut-always":
                    self.wfile.write(body[start : start + 100])
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ReleaseServer]:
    srv = ReleaseServer()
    monkeypatch.setenv("IMGSENT_PAPER_MODELS_URL", srv.url)
    monkeypatch.setenv("IMGSENT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # Release files are hundreds of MB; shrink the download chunk so a small fixture can be resumed mid-way.
    monkeypatch.setattr(hf_constants, "DOWNLOAD_CHUNK_SIZE", 16384)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setitem(keras_convert.PRESETS, "vit-b32", tiny_preset("tiny_unit"))
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def cache_files(tmp_path: Path) -> list[str]:
    root = tmp_path / "cache"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def test_first_use_downloads_resumes_converts_and_then_works_offline(server: ReleaseServer, tmp_path: Path) -> None:
    server.mode = "cut-once"
    folder = resolve_model_dir("paper-vit-b32")
    assert server.requests[0] is None and len(server.requests) == 2
    resumed_at = int(server.requests[1][6:-1])  # resumed where the dropped body stopped, not restarted
    assert 0 < resumed_at <= len(PAYLOAD) // 2
    assert cache_files(tmp_path) == [
        "paper/paper-vit-b32/README.md", "paper/paper-vit-b32/config.json", "paper/paper-vit-b32/model.safetensors",
    ]
    server.mode = "404"
    assert resolve_model_dir("paper-vit-b32", local_files_only=True) == folder
    assert paper_model_dir("paper-vit-b32") == folder
    assert len(server.requests) == 2


def test_offline_before_first_use_says_how_to_fix(server: ReleaseServer) -> None:
    with pytest.raises(ModelNotFoundError, match="not in the paper-model cache .* yet and downloads are off.*"
                       r"imgsent download paper-vit-b32`, then copy its folder ~/.cache/imgsent/paper/paper-vit-b32"):
        resolve_model_dir("paper-vit-b32", local_files_only=True)
    assert server.requests == [] and server.probes == []


def test_404_names_the_url_and_the_mirror_variable(server: ReleaseServer, tmp_path: Path) -> None:
    server.mode = "404"
    with pytest.raises(ModelNotFoundError, match=r"ViT_B32.h5 was not found \(HTTP 404\).*IMGSENT_PAPER_MODELS_URL"):
        resolve_model_dir("paper-vit-b32")
    assert cache_files(tmp_path) == []


def test_truncated_file_on_the_server_is_deleted_not_cached(server: ReleaseServer, tmp_path: Path) -> None:
    server.mode = "short-file"
    with pytest.raises(ConversionError, match="not the expected Keras student and was deleted.*truncated"):
        resolve_model_dir("paper-vit-b32")
    assert cache_files(tmp_path) == []
    server.mode = "ok"
    assert (resolve_model_dir("paper-vit-b32") / "model.safetensors").is_file()


@pytest.mark.slow
def test_connection_that_keeps_dropping_fails_cleanly_then_resumes(server: ReleaseServer, tmp_path: Path) -> None:
    server.mode = "cut-always"
    with pytest.raises(HubError, match="bytes are kept and the next run resumes from there"):
        resolve_model_dir("paper-vit-b32")
    partial = cache_files(tmp_path)
    assert partial == ["paper/downloads/ViT_B32.h5.incomplete"]
    kept = (tmp_path / "cache" / partial[0]).stat().st_size
    assert 0 < kept < len(PAYLOAD)
    server.mode = "ok"
    server.requests.clear()
    resolve_model_dir("paper-vit-b32")
    assert server.requests == [f"bytes={kept}-"]
    assert "paper/paper-vit-b32/model.safetensors" in cache_files(tmp_path)


def test_evaluate_paper_model_by_name(server: ReleaseServer, tmp_path: Path) -> None:
    images = tmp_path / "bench"
    images.mkdir()
    with (images / "labels.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "label", "agree"])
        for i in range(6):
            make_photo(images / f"{i}.jpg", seed=i, size=(40 + i, 30))
            writer.writerow([f"{i}.jpg", "positive" if i % 2 else "negative", 5 - i % 3])
    result = CliRunner().invoke(
        app, ["evaluate", str(images / "labels.csv"), "--model", "paper-vit-b32", "--json", "-", "--workers", "0"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["errors"] == [] and report["subsets"][0]["name"] == "all" and report["subsets"][0]["n"] == 6
    predictor = Predictor.from_pretrained("paper-vit-b32", device="cpu", dtype="float32")
    preds = predictor.predict(sorted(images.glob("*.jpg")), workers=0, binary=True)
    truth = ["positive" if i % 2 else "negative" for i in range(6)]
    expected = sum(p.label == t for p, t in zip(preds, truth)) / 6
    assert report["subsets"][0]["accuracy"] == pytest.approx(expected)
