from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from imgsent.distill.corpus import Post
from imgsent.distill.fetch import fetch_images, localize_posts
from imgsent.errors import InvalidConfigError


def _png(color: tuple[int, int, int] = (10, 200, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()
CAP = 4096


class _Handler(BaseHTTPRequestHandler):
    hits: Counter[str] = Counter()

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, code: int, body: bytes = b"", ctype: str = "image/png", **headers: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        path = self.path
        self.hits[path] += 1
        if path in ("/ok.png", "/same.png"):
            self._send(200, PNG)
        elif path == "/jpeg":
            self._send(200, PNG, ctype="image/jpeg; charset=binary")
        elif path == "/big.png":
            self._send(200, b"\0" * (CAP + 1))
        elif path == "/big-stream.png":  # no Content-Length: the cap must hold while streaming
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(CAP // 1000 + 2):
                self.wfile.write(b"\0" * 1000)
        elif path == "/page":
            self._send(200, b"<html></html>", ctype="text/html")
        elif path == "/flaky.png":
            if self.hits[path] == 1:
                self._send(500, b"oops", ctype="text/plain")
            else:
                self._send(200, _png((1, 2, 3)))
        elif path == "/down.png":
            self._send(503, b"down", ctype="text/plain")
        elif path == "/slow.png":
            time.sleep(1.0)
            self._send(200, PNG)
        elif path == "/redirect":
            self._send(302, Location="/ok.png")
        elif path in ("/loop-a", "/loop-b"):
            self._send(302, Location="/loop-b" if path == "/loop-a" else "/loop-a")
        elif path.startswith("/chain"):
            step = int(path.removeprefix("/chain"))
            self._send(302, Location=f"/chain{step + 1}")
        elif path == "/to-file":
            self._send(302, Location="file:///etc/passwd")
        else:
            self._send(404, b"missing", ctype="text/plain")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def _fetch(urls: list[str], dest: Path, **kwargs: object) -> dict[str, object]:
    options: dict = dict(max_bytes=CAP, connect_timeout=2.0, read_timeout=0.3, retries=2,
                         backoff=0.01, sleep=lambda s: None, workers=4)
    options.update(kwargs)
    report = fetch_images(urls, dest, **options)
    return {r.url: r for r in report.results}


def test_success_and_content_addressing(server: str, tmp_path: Path) -> None:
    results = _fetch([f"{server}/ok.png", f"{server}/same.png", f"{server}/ok.png", f"{server}/jpeg"], tmp_path)
    assert len(results) == 3  # repeats fetched once
    ok, same, jpeg = results[f"{server}/ok.png"], results[f"{server}/same.png"], results[f"{server}/jpeg"]
    digest = hashlib.sha256(PNG).hexdigest()
    assert ok.status == "ok" and ok.sha256 == digest and ok.size == len(PNG) and ok.attempts == 1
    assert ok.path == str(tmp_path / f"{digest}.png") == same.path
    assert Path(ok.path).read_bytes() == PNG
    assert jpeg.status == "ok" and jpeg.path.endswith(".jpg")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".part-")]


def test_failures_are_reported(server: str, tmp_path: Path) -> None:
    urls = {
        "big": f"{server}/big.png",
        "stream": f"{server}/big-stream.png",
        "page": f"{server}/page",
        "404": f"{server}/nothing.png",
        "down": f"{server}/down.png",
        "loop": f"{server}/loop-a",
        "chain": f"{server}/chain0",
        "file": f"{server}/to-file",
        "ftp": "ftp://127.0.0.1/x.png",
        "local": "file:///etc/passwd",
        "refused": "http://127.0.0.1:9/x.png",
    }
    results = _fetch(list(urls.values()), tmp_path)
    reason = {k: (results[u].status, results[u].reason) for k, u in urls.items()}
    assert reason == {
        "big": ("error", "too_large"),
        "stream": ("error", "too_large"),
        "page": ("error", "not_image"),
        "404": ("error", "http_404"),
        "down": ("error", "http_503"),
        "loop": ("error", "redirect"),
        "chain": ("error", "redirect"),
        "file": ("error", "redirect"),
        "ftp": ("error", "bad_scheme"),
        "local": ("error", "bad_scheme"),
        "refused": ("error", "connection"),
    }
    assert results[urls["404"]].attempts == 1  # client errors are not retried
    assert results[urls["down"]].attempts == 3  # server errors are, up to `retries` times
    assert "Content-Type is 'text/html'" in results[urls["page"]].detail
    assert list(tmp_path.iterdir()) == []
    assert _Handler.hits["/chain4"] == 0  # at most max_redirects (3) redirects followed


def test_retry_then_success(server: str, tmp_path: Path) -> None:
    waits: list[float] = []
    result = _fetch([f"{server}/flaky.png"], tmp_path, sleep=waits.append, backoff=0.25)[f"{server}/flaky.png"]
    assert result.status == "ok" and result.attempts == 2
    assert waits == [0.25]


def test_redirect_followed(server: str, tmp_path: Path) -> None:
    result = _fetch([f"{server}/redirect"], tmp_path)[f"{server}/redirect"]
    assert result.status == "ok" and result.sha256 == hashlib.sha256(PNG).hexdigest()


def test_slow_response_times_out(server: str, tmp_path: Path) -> None:
    start = time.monotonic()
    result = _fetch([f"{server}/slow.png"], tmp_path, retries=1)[f"{server}/slow.png"]
    assert result.status == "error" and result.reason == "timeout" and result.attempts == 2
    assert time.monotonic() - start < 1.5


def test_localize_posts(server: str, tmp_path: Path) -> None:
    report = fetch_images([f"{server}/ok.png", f"{server}/page"], tmp_path, sleep=lambda s: None)
    posts = [
        Post("1", "t", (f"{server}/ok.png", "/data/local.jpg")),
        Post("2", "t", (f"{server}/page",)),
    ]
    out = list(localize_posts(posts, report))
    assert out == [Post("1", "t", (report.paths[f"{server}/ok.png"], "/data/local.jpg"))]


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError, match="workers"):
        fetch_images([], tmp_path, workers=0)
