"""An in-memory server that speaks the parts of the Hugging Face Hub protocol that
``huggingface_hub`` uses to download and upload model repos.

It runs on ``127.0.0.1`` in a background thread, so tests exercise the real
``huggingface_hub`` client (HEAD/GET ``resolve``, repo info, tree listing, create
repo, preupload, NDJSON commits, LFS basic transfer) with no network access.

Implemented endpoints (model repos named ``owner/name`` only):

* ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: repo info with siblings.
* ``GET /api/models/{repo}/tree/{rev}[/{path}]``: file listing (``recursive`` honoured).
* ``GET /api/models/{repo}/refs``: branches and tags.
* ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: file content with ``ETag``, ``X-Repo-Commit``,
  ``Content-Length`` and ``Range`` support. Large-file (LFS) entries answer with a 302 to a
  "CDN" origin (``http://localhost:{port}/__cdn/{sha256}``) carrying ``X-Linked-Etag`` and
  ``X-Linked-Size``, as the real Hub does.
* ``POST /api/repos/create``, ``DELETE /api/repos/delete``, ``POST /api/models/{repo}/branch/{b}``,
  ``POST /api/models/{repo}/tag/{rev}``.
* ``POST /api/models/{repo}/preupload/{rev}``, ``POST /api/models/{repo}/commit/{rev}`` (NDJSON with
  base64 ``file``, ``lfsFile``, ``deletedFile`` and ``deletedFolder`` lines), ``POST /api/validate-yaml``.
* ``POST /{repo}.git/info/lfs/objects/batch``, ``PUT /__lfs/upload/{oid}``, ``POST /__lfs/verify``.

Errors carry the ``X-Error-Code`` header (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``) that ``huggingface_hub`` maps to its typed exceptions.

Faults are injected with :meth:`HubServer.add_fault`: a status code, a delay before the
response, a truncated body (dropped connection or a short, self-consistent response),
a wrong ETag; each one for every matching request or only for the next ``times`` ones.

Example:
    >>> with HubServer() as hub:
    ...     sha = hub.commit("acme/tiny", {"config.json": b"{}"}, create=True)
    ...     hub.add_fault(r"/resolve/", status=500, times=1)
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".onnx", ".msgpack", ".h5")
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
_REPO = r"(?P<repo>[^/]+/[^/]+)"


def git_blob_oid(data: bytes) -> str:
    """Return the git blob sha1 of ``data`` (what the Hub uses as a regular file's ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256_hex(data: bytes) -> str:
    """Return the sha256 of ``data`` (the ETag of an LFS file)."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Commit:
    """One immutable commit: a full snapshot of the repo's files."""

    sha: str
    files: dict[str, bytes]
    message: str
    parent: str | None
    date: str


@dataclass
class Repo:
    """An in-memory model repo."""

    repo_id: str
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        """Return the commit a branch, tag or full sha points to."""
        sha = self.branches.get(revision) or self.tags.get(revision) or revision
        return self.commits.get(sha)


@dataclass
class Fault:
    """A misbehaviour applied to requests whose path matches ``path`` (a regex, searched).

    Args:
        path: Regex searched in the request path (query string excluded).
        method: Only this HTTP method (``"GET"``, ``"HEAD"``, ...); ``None`` for all.
        status: Answer with this status code and an empty JSON error.
        delay: Seconds to wait before answering.
        truncate_at: Send only this many body bytes.
        drop_connection: With ``truncate_at``: announce the full ``Content-Length`` and close the
            connection mid-body (``True``), or announce the short length and end cleanly (``False``).
        etag: Report this ETag (and ``X-Linked-Etag``) instead of the real one.
        headers: Extra response headers sent with ``status`` (e.g. ``{"X-Error-Code": "EntryNotFound"}``).
        times: Apply to the next ``times`` matching requests only; ``None`` for all.
    """

    path: str
    method: str | None = None
    status: int | None = None
    delay: float = 0.0
    truncate_at: int | None = None
    drop_connection: bool = True
    etag: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = None
    hits: int = 0


class HTTPFailure(Exception):
    """An HTTP error answered by the server."""

    def __init__(self, status: int, code: str | None = None, message: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class HubServer:
    """A Hub-compatible HTTP server holding repos in memory.

    Args:
        token: If set, private repos and every write need ``Authorization: Bearer <token>``.
        lfs_threshold: Files at least this large are uploaded through LFS (``None``: never).
        lfs_suffixes: Files with these suffixes are stored as LFS (served through a redirect).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        lfs_threshold: int | None = None,
        lfs_suffixes: tuple[str, ...] = LFS_SUFFIXES,
    ) -> None:
        self.token = token
        self.lfs_threshold = lfs_threshold
        self.lfs_suffixes = lfs_suffixes
        self.repos: dict[str, Repo] = {}
        self.lfs_store: dict[str, bytes] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._counter = 0
        self._connections: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> HubServer:
        """Start serving on a free port of 127.0.0.1."""
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="hubserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        with self._lock:  # drop kept-alive client connections too, as a dead server would
            for conn in list(self._connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        assert self._httpd is not None, "call start() first"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The endpoint to give ``huggingface_hub`` (``HF_ENDPOINT`` or ``endpoint=``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn_url(self) -> str:
        """A second origin (same server) that large files are redirected to."""
        return f"http://localhost:{self.port}"

    # ------------------------------------------------------------------ repo state

    def create_repo(self, repo_id: str, *, private: bool = False) -> Repo:
        """Create an empty repo whose ``main`` branch holds a ``.gitattributes`` file."""
        with self._lock:
            if repo_id in self.repos:
                raise ValueError(f"repo {repo_id} exists")
            repo = self.repos[repo_id] = Repo(repo_id, private=private)
            self._new_commit(repo, "main", {".gitattributes": GITATTRIBUTES}, "initial commit")
            return repo

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes | None],
        *,
        branch: str = "main",
        message: str = "update",
        create: bool = False,
    ) -> str:
        """Commit ``files`` (``None`` deletes a path) on ``branch`` and return the new sha."""
        with self._lock:
            if create and repo_id not in self.repos:
                self.create_repo(repo_id)
            repo = self.repos[repo_id]
            head = repo.resolve(branch) or repo.resolve("main")
            snapshot = dict(head.files) if head else {}
            for path, data in files.items():
                if data is None:
                    snapshot.pop(path, None)
                else:
                    snapshot[path] = data
            return self._new_commit(repo, branch, snapshot, message)

    def create_branch(self, repo_id: str, branch: str, *, revision: str = "main") -> None:
        """Create ``branch`` at ``revision``."""
        with self._lock:
            repo = self.repos[repo_id]
            repo.branches[branch] = repo.resolve(revision).sha  # type: ignore[union-attr]

    def create_tag(self, repo_id: str, tag: str, *, revision: str = "main") -> None:
        """Create ``tag`` at ``revision``."""
        with self._lock:
            repo = self.repos[repo_id]
            repo.tags[tag] = repo.resolve(revision).sha  # type: ignore[union-attr]

    def delete_repo(self, repo_id: str) -> None:
        """Delete a repo (later requests get 404 RepoNotFound)."""
        with self._lock:
            self.repos.pop(repo_id, None)

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """Return a copy of the files of ``repo_id`` at ``revision``."""
        with self._lock:
            return dict(self.repos[repo_id].resolve(revision).files)  # type: ignore[union-attr]

    def _new_commit(self, repo: Repo, branch: str, files: dict[str, bytes], message: str) -> str:
        self._counter += 1
        parent = repo.branches.get(branch)
        digest = hashlib.sha1(f"{repo.repo_id}\0{parent}\0{message}\0{self._counter}".encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + files[path])
        sha = digest.hexdigest()
        date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        repo.commits[sha] = Commit(sha, files, message, parent, date)
        repo.branches[branch] = sha
        return sha

    # ------------------------------------------------------------------ faults

    def add_fault(self, path: str, **options: Any) -> Fault:
        """Register a :class:`Fault` for requests whose path matches the regex ``path``."""
        fault = Fault(path=path, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self._lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method not in (None, method) or not re.search(fault.path, path):
                    continue
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                fault.hits += 1
                return fault
        return None

    def is_lfs(self, path: str, data: bytes) -> bool:
        """Whether a file is stored as LFS (served through a redirect with an sha256 ETag)."""
        return path.endswith(self.lfs_suffixes)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: HubServer

    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._connections.add(self.connection)

    def finish(self) -> None:
        with self.hub._lock:
            self.hub._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # ------------------------------------------------------------------ dispatch

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, self.query = unquote(parts.path), parse_qs(parts.query)
        self.hub.requests.append((method, path))
        body = self._read_body()
        fault = self.hub._take_fault(method, path)
        self.fault = fault
        if fault is not None and fault.delay and self.hub._stop.wait(fault.delay):
            return
        try:
            if fault is not None and fault.status is not None:
                return self._send_json({"error": f"injected HTTP {fault.status}"}, status=fault.status, headers=fault.headers)
            self._route(method, path, body)
        except HTTPFailure as err:
            headers = {"X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            if getattr(err, "commit", None):
                headers["X-Repo-Commit"] = err.commit  # type: ignore[attr-defined]
            self._send_json({"error": err.message}, status=err.status, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _route(self, method: str, path: str, body: bytes) -> None:
        routes: list[tuple[str, str, Any]] = [
            ("GET", rf"^/api/models/{_REPO}(?:/revision/(?P<rev>.+))?$", self._model_info),
            ("GET", rf"^/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?$", self._tree),
            ("GET", rf"^/api/models/{_REPO}/refs$", self._refs),
            ("HEAD", rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", self._resolve),
            ("GET", rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", self._resolve),
            ("HEAD", r"^/__cdn/(?P<oid>[0-9a-f]{64})$", self._cdn),
            ("GET", r"^/__cdn/(?P<oid>[0-9a-f]{64})$", self._cdn),
            ("POST", r"^/api/repos/create$", self._create_repo),
            ("DELETE", r"^/api/repos/delete$", self._delete_repo),
            ("POST", rf"^/api/models/{_REPO}/branch/(?P<branch>.+)$", self._create_branch),
            ("POST", rf"^/api/models/{_REPO}/tag/(?P<rev>.+)$", self._create_tag),
            ("POST", rf"^/api/models/{_REPO}/preupload/(?P<rev>.+)$", self._preupload),
            ("POST", rf"^/api/models/{_REPO}/commit/(?P<rev>.+)$", self._commit),
            ("POST", r"^/api/validate-yaml$", self._validate_yaml),
            ("POST", rf"^/{_REPO}\.git/info/lfs/objects/batch$", self._lfs_batch),
            ("PUT", r"^/__lfs/upload/(?P<oid>[0-9a-f]{64})$", self._lfs_upload),
            ("POST", r"^/__lfs/verify$", self._lfs_verify),
        ]
        for route_method, pattern, handler in routes:
            match = re.match(pattern, path)
            if match and route_method == method:
                return handler(body=body, **match.groupdict())
        raise HTTPFailure(404, None, f"no route for {method} {path}")

    # ------------------------------------------------------------------ helpers

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        return self.hub.token is None or self.headers.get("Authorization") == f"Bearer {self.hub.token}"

    def _require_write(self) -> None:
        if not self._authorized():
            raise HTTPFailure(401, None, "Invalid credentials in Authorization header")

    def _repo(self, repo_id: str) -> Repo:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            raise HTTPFailure(404, "RepoNotFound", "Repository not found")
        return repo

    def _commit_of(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HTTPFailure(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    def _base(self) -> str:
        return self.hub.url

    def _send_json(self, data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json", **(headers or {})})

    def _send(self, body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        fault, head = self.fault, self.command == "HEAD"
        headers = dict(headers or {})
        cut = None
        if fault is not None and fault.truncate_at is not None and len(body) > fault.truncate_at:
            cut = fault.truncate_at
        length = cut if cut is not None and not fault.drop_connection else len(body)  # type: ignore[union-attr]
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if head:
            return
        self.wfile.write(body if cut is None else body[:cut])
        self.wfile.flush()
        if cut is not None and fault.drop_connection:  # type: ignore[union-attr]
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _send_bytes(self, data: bytes, headers: dict[str, str]) -> None:
        """Send file content, honouring a ``Range: bytes=N-[M]`` request."""
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream", **headers}
        status = 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            if start >= len(data):
                headers["Content-Range"] = f"bytes */{len(data)}"
                return self._send(b"", status=416, headers=headers)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        self._send(data, status=status, headers=headers)

    # ------------------------------------------------------------------ read endpoints

    def _model_info(self, *, repo: str, rev: str | None = None, body: bytes) -> None:
        repo_obj = self._repo(repo)
        commit = self._commit_of(repo_obj, rev or "main")
        self._send_json(
            {
                "_id": hashlib.md5(repo.encode()).hexdigest()[:24],
                "id": repo,
                "modelId": repo,
                "author": repo.split("/")[0],
                "sha": commit.sha,
                "lastModified": commit.date,
                "createdAt": commit.date,
                "private": repo_obj.private,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "library_name": "imgsent",
                "siblings": [{"rfilename": name} for name in sorted(commit.files)],
            }
        )

    def _tree(self, *, repo: str, rev: str, sub: str | None = None, body: bytes) -> None:
        commit = self._commit_of(self._repo(repo), rev)
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = f"{sub.strip('/')}/" if sub else ""
        entries: dict[str, dict[str, Any]] = {}
        for name, data in sorted(commit.files.items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :].split("/")
            for depth in range(1, len(rest)):
                if depth > 1 and not recursive:
                    break
                folder = prefix + "/".join(rest[:depth])
                entries.setdefault(folder, {"type": "directory", "oid": git_blob_oid(folder.encode()), "size": 0, "path": folder})
            if len(rest) > 1 and not recursive:
                continue
            entry: dict[str, Any] = {"type": "file", "oid": git_blob_oid(data), "size": len(data), "path": name}
            if self.hub.is_lfs(name, data):
                entry["lfs"] = {"oid": sha256_hex(data), "size": len(data), "pointerSize": 134}
            entries[name] = entry
        self._send_json(list(entries.values()))

    def _refs(self, *, repo: str, body: bytes) -> None:
        repo_obj = self._repo(repo)
        self._send_json(
            {
                "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in repo_obj.branches.items()],
                "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in repo_obj.tags.items()],
                "converts": [],
            }
        )

    def _resolve(self, *, repo: str, rev: str, file: str, body: bytes) -> None:
        repo_obj = self._repo(repo)
        commit = self._commit_of(repo_obj, rev)
        data = commit.files.get(file)
        if data is None:
            err = HTTPFailure(404, "EntryNotFound", f"{file} does not exist on {rev}")
            err.commit = commit.sha  # type: ignore[attr-defined]
            raise err
        fault_etag = self.fault.etag if self.fault is not None else None
        headers = {"X-Repo-Commit": commit.sha}
        if self.hub.is_lfs(file, data):
            oid = sha256_hex(data)
            self.hub.lfs_store.setdefault(oid, data)
            etag = fault_etag or oid
            headers.update(
                {
                    "ETag": f'"{git_blob_oid(data)}"',
                    "X-Linked-Etag": f'"{etag}"',
                    "X-Linked-Size": str(len(data)),
                    "Location": f"{self.hub.cdn_url}/__cdn/{oid}",
                }
            )
            return self._send(b"", status=302, headers=headers)
        headers["ETag"] = f'"{fault_etag or git_blob_oid(data)}"'
        self._send_bytes(data, headers)

    def _cdn(self, *, oid: str, body: bytes) -> None:
        data = self.hub.lfs_store.get(oid)
        if data is None:
            raise HTTPFailure(404, None, "NoSuchKey")
        etag = self.fault.etag if self.fault is not None and self.fault.etag else oid
        self._send_bytes(data, {"ETag": f'"{etag}"'})

    # ------------------------------------------------------------------ write endpoints

    def _create_repo(self, *, body: bytes) -> None:
        self._require_write()
        payload = json.loads(body or b"{}")
        if payload.get("type", "model") != "model":
            raise HTTPFailure(400, None, "only model repos are supported")
        repo_id = f"{payload['organization'] or 'user'}/{payload['name']}"
        private = payload.get("private", payload.get("visibility") == "private") or False
        with self.hub._lock:
            if repo_id in self.hub.repos:
                body = {"error": "You already created this model repo", "url": f"{self._base()}/{repo_id}"}
                return self._send_json(body, status=409)
            self.hub.create_repo(repo_id, private=bool(private))
        self._send_json({"url": f"{self._base()}/{repo_id}", "name": repo_id, "id": repo_id})

    def _delete_repo(self, *, body: bytes) -> None:
        self._require_write()
        payload = json.loads(body or b"{}")
        repo_id = f"{payload['organization'] or 'user'}/{payload['name']}"
        self._repo(repo_id)
        self.hub.delete_repo(repo_id)
        self._send_json({})

    def _create_branch(self, *, repo: str, branch: str, body: bytes) -> None:
        self._require_write()
        repo_obj = self._repo(repo)
        start = json.loads(body or b"{}").get("startingPoint") or "main"
        with self.hub._lock:
            if branch in repo_obj.branches:
                raise HTTPFailure(409, None, "Reference already exists")
            repo_obj.branches[branch] = self._commit_of(repo_obj, start).sha
        self._send_json({})

    def _create_tag(self, *, repo: str, rev: str, body: bytes) -> None:
        self._require_write()
        repo_obj = self._repo(repo)
        tag = json.loads(body or b"{}")["tag"]
        with self.hub._lock:
            if tag in repo_obj.tags:
                raise HTTPFailure(409, None, "Tag already exists")
            repo_obj.tags[tag] = self._commit_of(repo_obj, rev).sha
        self._send_json({})

    def _validate_yaml(self, *, body: bytes) -> None:
        self._send_json({"errors": [], "warnings": []})

    def _preupload(self, *, repo: str, rev: str, body: bytes) -> None:
        self._require_write()
        commit = self._commit_of(self._repo(repo), rev)
        files = []
        for item in json.loads(body)["files"]:
            lfs = self.hub.lfs_threshold is not None and item["size"] >= self.hub.lfs_threshold
            remote = commit.files.get(item["path"])
            oid = None if remote is None else (sha256_hex(remote) if lfs else git_blob_oid(remote))
            files.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        self._send_json({"files": files, "commitOid": commit.sha})

    def _commit(self, *, repo: str, rev: str, body: bytes) -> None:
        self._require_write()
        repo_obj = self._repo(repo)
        head = self._commit_of(repo_obj, rev)
        if rev not in repo_obj.branches:
            raise HTTPFailure(400, None, f"{rev} is not a branch")
        snapshot, message = dict(head.files), "commit"
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value["summary"]
                if value.get("parentCommit") not in (None, head.sha):
                    raise HTTPFailure(412, None, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                snapshot[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                data = self.hub.lfs_store.get(value["oid"])
                if data is None:
                    raise HTTPFailure(422, None, f"LFS object {value['oid']} was not uploaded")
                snapshot[value["path"]] = data
            elif key == "deletedFile":
                if snapshot.pop(value["path"], None) is None:
                    raise HTTPFailure(404, "EntryNotFound", "A file with this name doesn't exist")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                snapshot = {k: v for k, v in snapshot.items() if not k.startswith(prefix)}
            else:
                raise HTTPFailure(400, None, f"unknown commit operation {key!r}")
        with self.hub._lock:
            sha = self.hub._new_commit(repo_obj, rev, snapshot, message)
        self._send_json(
            {"success": True, "commitOid": sha, "commitUrl": f"{self._base()}/{repo}/commit/{sha}", "pullRequestUrl": None}
        )

    def _lfs_batch(self, *, repo: str, body: bytes) -> None:
        self._require_write()
        self._repo(repo)
        payload = json.loads(body)
        objects = []
        for obj in payload["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs_store:
                entry["actions"] = {
                    "upload": {"href": f"{self._base()}/__lfs/upload/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{self._base()}/__lfs/verify", "header": {}},
                }
            objects.append(entry)
        self._send_json({"transfer": "basic", "objects": objects})

    def _lfs_upload(self, *, oid: str, body: bytes) -> None:
        if sha256_hex(body) != oid:
            raise HTTPFailure(400, None, "sha256 mismatch")
        self.hub.lfs_store[oid] = body
        self._send(b"")

    def _lfs_verify(self, *, body: bytes) -> None:
        payload = json.loads(body)
        data = self.hub.lfs_store.get(payload["oid"])
        if data is None or len(data) != payload["size"]:
            raise HTTPFailure(404, None, "object not found")
        self._send_json({})



__all__ = ["Commit", "Fault", "HubServer", "Repo", "git_blob_oid", "sha256_hex"]
