"""The shared torn-line repair used by classify's resume and the teacher cache."""

from __future__ import annotations

from pathlib import Path

from imgsent.torn_lines import cut_torn_line


def test_cuts_only_an_unterminated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    assert cut_torn_line(path) == 0 and not path.exists()  # missing: left alone
    path.write_bytes(b"")
    assert cut_torn_line(path) == 0 and path.read_bytes() == b""
    path.write_bytes(b"path,label\na.jpg,positive\n")
    assert cut_torn_line(path, fsync=True) == 0 and path.read_bytes() == b"path,label\na.jpg,positive\n"
    path.write_bytes(b"path,label\na.jpg,positive\nb.jp")
    assert cut_torn_line(path, fsync=True) == 4
    assert path.read_bytes() == b"path,label\na.jpg,positive\n"
    path.write_bytes("only a t\u00f6rn line".encode())
    assert cut_torn_line(path) == len("only a t\u00f6rn line".encode()) and path.read_bytes() == b""
