"""The engine cache: entries, last-used times, pruning, clearing, and ``imgsent cache``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.engines.cache import cache_entries, clear_cache, lookup, prune_cache
from imgsent.errors import InvalidConfigError

DAY = 86400


def _entry(root: Path, key: str, *, size: int = 100, age_days: float = 0.0, model: str = "m") -> Path:
    """A sound entry (file and manifest agree) last used ``age_days`` ago."""
    import hashlib

    folder = root / key
    folder.mkdir(parents=True)
    data = os.urandom(size)
    (folder / "model.onnx").write_bytes(data)
    manifest = {"sha256": hashlib.sha256(data).hexdigest(), "size": size, "format": "onnx", "model": model}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    when = time.time() - age_days * DAY
    os.utime(folder / "manifest.json", (when, when))
    return folder


@pytest.fixture()
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("IMGSENT_CACHE", str(tmp_path))
    return tmp_path / "engines"


def test_entries_are_listed_most_recently_used_first(root):
    _entry(root, "old", age_days=3, model="folder/a")
    _entry(root, "new", age_days=1, model="folder/b")
    (root / ".export-123").mkdir()  # a half-written export is not an entry
    entries = cache_entries()
    assert [(e.key, e.model, e.engine_format) for e in entries] == [("new", "folder/b", "onnx"), ("old", "folder/a", "onnx")]
    assert entries[0].size > 100  # the file and its manifest


def test_a_hit_marks_the_entry_used(root):
    _entry(root, "k", age_days=10)
    before = cache_entries()[0].last_used
    assert lookup("k") == root / "k" / "model.onnx"
    assert (cache_entries()[0].last_used - before).total_seconds() > 9 * DAY
    (root / "k" / "model.onnx").write_bytes(b"edited")
    assert lookup("k") is None  # no longer matches its manifest


def test_prune_keeps_the_most_recent_within_count_and_size(root):
    for i in range(5):
        _entry(root, f"e{i}", age_days=i)
    removed = prune_cache(keep=3)
    assert sorted(e.key for e in removed) == ["e3", "e4"]
    assert [e.key for e in cache_entries()] == ["e0", "e1", "e2"]
    size = cache_entries()[0].size
    removed = prune_cache(keep=10, max_bytes=2 * size - 1, protect=("e2",))
    assert [e.key for e in removed] == ["e1"]  # e0 fits; e1 would pass the cap; e2 is protected
    assert [e.key for e in cache_entries()] == ["e0", "e2"]


def test_stale_staging_folders_are_removed_fresh_ones_kept(root):
    _entry(root, "k")
    stale, fresh = root / ".export-old", root / ".export-new"
    stale.mkdir()
    fresh.mkdir()
    os.utime(stale, (time.time() - 2 * DAY,) * 2)
    prune_cache()
    assert not stale.exists() and fresh.exists() and (root / "k").exists()


def test_clear_all_or_older_than(root):
    _entry(root, "recent", age_days=1)
    _entry(root, "stale", age_days=40)
    assert [e.key for e in clear_cache(older_than_days=30, dry_run=True)] == ["stale"]
    assert (root / "stale").exists()  # a dry run removes nothing
    assert [e.key for e in clear_cache(older_than_days=30)] == ["stale"]
    assert [e.key for e in clear_cache()] == ["recent"]
    assert cache_entries() == []
    with pytest.raises(InvalidConfigError, match=r"older_than_days must be a number in \[0, inf\], got -1"):
        clear_cache(older_than_days=-1)


def test_cli_info_lists_entries_and_total(root):
    _entry(root, "a" * 64, size=2_000_000, model="/models/mine")
    result = CliRunner().invoke(app, ["cache", "info"])
    assert result.exit_code == 0, result.output
    assert "aaaaaaaaaaaa" in result.output and "/models/mine" in result.output and "onnx" in result.output
    assert "1 entries, 2.0 MB in total" in result.output


def test_cli_clear_asks_unless_yes(root):
    _entry(root, "recent", age_days=1)
    _entry(root, "stale", age_days=40)
    refused = CliRunner().invoke(app, ["cache", "clear", "--older-than", "30"], input="n\n")
    assert refused.exit_code == 1 and "Nothing deleted" in refused.output
    assert len(cache_entries()) == 2
    confirmed = CliRunner().invoke(app, ["cache", "clear", "--older-than", "30"], input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert "Deleted 1 entries" in confirmed.output
    assert [e.key for e in cache_entries()] == ["recent"]
    forced = CliRunner().invoke(app, ["cache", "clear", "--yes"])
    assert forced.exit_code == 0 and cache_entries() == []
    assert "Nothing to delete" in CliRunner().invoke(app, ["cache", "clear", "-y"]).output
    bad = CliRunner().invoke(app, ["cache", "clear", "--older-than", "-2"])
    assert bad.exit_code == 2
