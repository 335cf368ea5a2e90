"""Download post images from ``http(s)`` URLs into a content-addressed folder.

Only the standard library is used (``urllib``), so this step needs no extra package.
Every URL gets a :class:`FetchResult`; a failure is reported, never raised.

Safety limits, all keyword options of :func:`fetch_images`:

* ``http``/``https`` only, for the URL and for every redirect (at most ``max_redirects``);
* separate connect and read timeouts, plus a total time limit per attempt (slow-drip servers);
* a size cap, checked against ``Content-Length`` and while streaming;
* the response's ``Content-Type`` must be ``image/*``;
* retries with exponential backoff on timeouts, connection errors, HTTP 408, 429 and 5xx.

Files are saved as ``<sha256 of the bytes><extension>``, so the same image served under
two URLs is stored once and a re-run finds it again.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from imgsent.distill.corpus import Post
from imgsent.errors import InvalidConfigError

FetchStatus = Literal["ok", "error"]
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
}
_CHUNK = 1 << 16


@dataclass(frozen=True)
class FetchResult:
    """What happened to one URL.

    Attributes:
        url: The requested URL.
        status: ``"ok"`` or ``"error"``.
        path: Saved file (``None`` on error).
        sha256: Hex digest of the saved bytes (``None`` on error).
        size: Bytes saved.
        reason: ``""`` on success, else one of ``bad_scheme``, ``http_<code>``, ``timeout``,
            ``connection``, ``too_large``, ``not_image``, ``redirect``, ``io``.
        detail: Human-readable detail of the last failure.
        attempts: Number of attempts made.
    """

    url: str
    status: FetchStatus
    path: str | None = None
    sha256: str | None = None
    size: int = 0
    reason: str = ""
    detail: str = ""
    attempts: int = 0


@dataclass
class FetchReport:
    """All results of :func:`fetch_images`, in input order (duplicates URLs fetched once)."""

    results: list[FetchResult] = field(default_factory=list)

    @property
    def paths(self) -> dict[str, str]:
        """Map each successfully fetched URL to its local file."""
        return {r.url: r.path for r in self.results if r.status == "ok" and r.path}

    @property
    def failures(self) -> Counter[str]:
        """Failure counts by reason."""
        return Counter(r.reason for r in self.results if r.status != "ok")


class _Failure(Exception):
    def __init__(self, reason: str, detail: str, *, retry: bool = False) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.retry = reason, detail, retry


def fetch_images(
    urls: Iterable[str],
    dest: str | Path,
    *,
    workers: int = 8,
    connect_timeout: float = 5.0,
    read_timeout: float = 10.0,
    total_timeout: float = 60.0,
    max_bytes: int = 20 * 1024 * 1024,
    retries: int = 2,
    backoff: float = 0.5,
    max_redirects: int = 3,
    user_agent: str = "imgsent",
    sleep: Callable[[float], None] = time.sleep,
) -> FetchReport:
    """Download image URLs into ``dest`` with bounded concurrency and safety limits.

    Args:
        urls: URLs to fetch; repeats are fetched once.
        dest: Folder for the files (created if missing), named by content hash.
        workers: Concurrent downloads (threads). Default 8.
        connect_timeout: Seconds to open the connection. Default 5.
        read_timeout: Seconds to wait for each read. Default 10.
        total_timeout: Seconds allowed for one whole attempt. Default 60.
        max_bytes: Largest accepted body. Default 20 MiB.
        retries: Extra attempts after a transient failure. Default 2.
        backoff: First retry delay in seconds; doubles each time. Default 0.5.
        max_redirects: Most redirects followed. Default 3.
        user_agent: ``User-Agent`` header sent.
        sleep: Function used to wait between retries (tests pass a no-op).

    Returns:
        A :class:`FetchReport` with one :class:`FetchResult` per distinct URL, in input order.

    Example:
        >>> report = fetch_images(["https://example.com/a.jpg"], "images/")  # doctest: +SKIP
        >>> report.results[0].status, report.results[0].path  # doctest: +SKIP
        ('ok', 'images/3f2a...9c.jpg')
    """
    if workers < 1 or max_bytes < 1 or retries < 0 or max_redirects < 0:
        raise InvalidConfigError(
            f"workers ({workers}) and max_bytes ({max_bytes}) must be >= 1; retries ({retries}) and "
            f"max_redirects ({max_redirects}) must be >= 0."
        )
    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    unique = list(dict.fromkeys(urls))
    opener = _build_opener(read_timeout, max_redirects)
    options = dict(
        folder=folder, opener=opener, connect_timeout=connect_timeout, total_timeout=total_timeout,
        max_bytes=max_bytes, retries=retries, backoff=backoff, user_agent=user_agent, sleep=sleep,
    )
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imgsent-fetch") as pool:
        results = list(pool.map(lambda u: _fetch_one(u, **options), unique))
    return FetchReport(results)


def localize_posts(posts: Iterable[Post], report: FetchReport) -> Iterable[Post]:
    """Replace image URLs by their fetched files; drop URLs that failed and posts left without images.

    Example:
        >>> posts = list(localize_posts(posts, fetch_images(urls, "images/")))  # doctest: +SKIP
    """
    paths = report.paths
    for post in posts:
        images = tuple(paths.get(i, "") if i.startswith(("http://", "https://")) else i for i in post.images)
        images = tuple(i for i in images if i)
        if images:
            yield replace(post, images=images)


def _fetch_one(url: str, **options: Any) -> FetchResult:
    scheme = urllib.parse.urlsplit(url).scheme.lower() if isinstance(url, str) else ""
    if scheme not in ("http", "https"):
        return FetchResult(str(url), "error", reason="bad_scheme", detail=f"only http(s) URLs are fetched, got {url!r}")
    attempts, failure = 0, _Failure("connection", "no attempt")
    for attempt in range(options["retries"] + 1):
        attempts += 1
        if attempt:
            options["sleep"](options["backoff"] * 2 ** (attempt - 1))
        try:
            path, digest, size = _download(url, **options)
            return FetchResult(url, "ok", path=str(path), sha256=digest, size=size, attempts=attempts)
        except _Failure as exc:
            failure = exc
            if not exc.retry:
                break
    return FetchResult(url, "error", reason=failure.reason, detail=failure.detail, attempts=attempts)


def _download(
    url: str,
    *,
    folder: Path,
    opener: urllib.request.OpenerDirector,
    connect_timeout: float,
    total_timeout: float,
    max_bytes: int,
    user_agent: str,
    **_: Any,
) -> tuple[Path, str, int]:
    deadline = time.monotonic() + total_timeout
    request = urllib.request.Request(url, headers={"User-Agent": user_agent, "Accept": "image/*"})
    try:
        response = opener.open(request, timeout=connect_timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if 300 <= exc.code < 400:
            raise _Failure("redirect", f"redirect refused or too many redirects: {exc.reason}") from None
        raise _Failure(f"http_{exc.code}", f"HTTP {exc.code} {exc.reason}", retry=exc.code in _RETRY_STATUS) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise _Failure("timeout", f"connect timed out after {connect_timeout}s", retry=True) from None
        if "redirect" in str(reason).lower():
            raise _Failure("redirect", str(reason)) from None
        raise _Failure("connection", str(reason), retry=True) from None
    except (TimeoutError, socket.timeout):
        raise _Failure("timeout", "timed out waiting for the response", retry=True) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _Failure("connection", f"{type(exc).__name__}: {exc}", retry=True) from None
    with response:
        ctype = (response.headers.get_content_type() or "").lower()
        if not ctype.startswith("image/"):
            raise _Failure("not_image", f"Content-Type is {response.headers.get('Content-Type')!r}, expected image/*")
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise _Failure("too_large", f"Content-Length {length} exceeds max_bytes={max_bytes}")
        return _save(response, folder, _EXTENSIONS.get(ctype, ".img"), max_bytes=max_bytes, deadline=deadline)


def _save(response: Any, folder: Path, suffix: str, *, max_bytes: int, deadline: float) -> tuple[Path, str, int]:
    digest, size = hashlib.sha256(), 0
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                if time.monotonic() > deadline:
                    raise _Failure("timeout", "download exceeded total_timeout", retry=True)
                try:
                    chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
                except (TimeoutError, socket.timeout):
                    raise _Failure("timeout", "read timed out", retry=True) from None
                except (OSError, http.client.HTTPException) as exc:
                    raise _Failure("connection", f"{type(exc).__name__}: {exc}", retry=True) from None
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise _Failure("too_large", f"body exceeds max_bytes={max_bytes}")
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise _Failure("not_image", "empty body")
        final = folder / f"{digest.hexdigest()}{suffix}"
        os.replace(tmp_name, final)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return final, digest.hexdigest(), size


def _build_opener(read_timeout: float, max_redirects: int) -> urllib.request.OpenerDirector:
    """An opener with a separate read timeout and a capped, http(s)-only redirect policy."""

    class _HTTPConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            self.sock.settimeout(read_timeout)

    class _HTTPSConnection(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            self.sock.settimeout(read_timeout)

    class _HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(_HTTPConnection, req)

    class _HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(_HTTPSConnection, req, context=self._context)

    class _Redirects(urllib.request.HTTPRedirectHandler):
        max_redirections = max_redirects
        max_repeats = 1

        def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
            if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
                raise urllib.error.HTTPError(newurl, code, f"redirect to non-http URL {newurl!r}", headers, fp)
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return urllib.request.build_opener(_HTTPHandler(), _HTTPSHandler(), _Redirects())


__all__ = ["FetchReport", "FetchResult", "fetch_images", "localize_posts"]
