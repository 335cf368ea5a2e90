"""The one chunked file hash."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from imgsent import hashing
from imgsent.hashing import file_sha256, update_from_file

PACKAGE = Path(__file__).resolve().parents[1] / "imgsent"


def test_file_sha256_reads_in_chunks(tmp_path, monkeypatch):
    data = bytes(range(256)) * 41  # not a multiple of the chunk
    path = tmp_path / "blob"
    path.write_bytes(data)
    monkeypatch.setattr(hashing, "CHUNK_SIZE", 1000)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert update_from_file(hashlib.sha1(b"blob|"), path).hexdigest() == hashlib.sha1(b"blob|" + data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_sha256(empty) == hashlib.sha256(b"").hexdigest()


def test_no_other_module_reads_a_file_into_a_hash():
    loop = re.compile(r"\b(?:fh|fp|f|handle)\.read\(")  # an open file read piece by piece (not a network response)
    found = sorted(
        str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
        if p.name != "hashing.py" and "hashlib" in (text := p.read_text(encoding="utf-8")) and loop.search(text)
    )
    assert found == [], found
