"""``imgsent merge`` and :mod:`imgsent.merge`: joining part files through the one results reader."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.errors import MergeError, OutputExistsError, OutputNotWritableError
from imgsent.merge import merge_parts
from imgsent.shard import iter_shard_files

runner = CliRunner()


def _write_csv(path: Path, paths: list[str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "label", "negative", "neutral", "positive", "error"])
        for p in paths:
            writer.writerow([p, "positive", 0.1, 0.2, 0.7, ""])
    return path



def test_merge_refuses_duplicates_gaps_and_unknown_paths(tree: Path, tmp_path: Path) -> None:
    listing = list(iter_shard_files([tree], None, recursive=True))
    a = _write_csv(tmp_path / "a.csv", listing[:10])
    b = _write_csv(tmp_path / "b.csv", listing[9:])
    out = tmp_path / "all.csv"
    with pytest.raises(MergeError, match="1 path\\(s\\) appear more than once") as info:
        merge_parts(out, [a, b])
    assert info.value.duplicates == [listing[9]]
    assert not out.exists()

    gap = _write_csv(tmp_path / "gap.csv", listing[:5] + listing[6:] + ["elsewhere/z.jpg"])
    with pytest.raises(MergeError, match="1 input file\\(s\\) have no row") as info:
        merge_parts(out, [gap], inputs=[tree], recursive=True)
    assert info.value.missing == [listing[5]] and info.value.unexpected == ["elsewhere/z.jpg"]
    assert not out.exists()

    with pytest.raises(MergeError, match="also a part file"):
        merge_parts(a, [a])
    result = runner.invoke(app, ["merge", str(out), str(a), str(b)])
    assert result.exit_code == 1 and "appear more than once" in result.output


def test_merge_converts_between_formats_and_drops_a_torn_row(tmp_path: Path) -> None:
    a = _write_csv(tmp_path / "a.csv", ["p/1.jpg", "p/2.jpg"])
    b = tmp_path / "b.jsonl"
    b.write_text(
        json.dumps({"path": "p/3.jpg", "label": None, "negative": None, "neutral": None, "positive": None,
                    "error": "p/3.jpg: no such file"}) + "\n" + '{"path": "p/4.j',
        encoding="utf-8",
    )
    out = tmp_path / "all.jsonl"
    summary = merge_parts(out, [a, b])
    assert summary.rows == 3 and summary.errors == 1 and summary.torn == [str(b)]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    # parts written before the confidence column merge with an empty one
    assert rows[0] == {"path": "p/1.jpg", "label": "positive", "confidence": None, "negative": 0.1, "neutral": 0.2,
                       "positive": 0.7, "error": None}
    assert rows[2]["error"] == "p/3.jpg: no such file" and rows[2]["positive"] is None



def test_merge_refuses_a_malformed_row_and_an_unknown_extension(tmp_path: Path) -> None:
    a = _write_csv(tmp_path / "a.csv", ["p/1.jpg"])
    b = tmp_path / "b.jsonl"
    b.write_text('{"path": "p/2.jpg", "label": "positive", "negative": 0.1, "neutral": 0.1, "positive": 0.8}\n'
                 "not json\n", encoding="utf-8")
    with pytest.raises(MergeError, match=r"b.jsonl' line 2 is not a valid row \(malformed JSON line"):
        merge_parts(tmp_path / "all.csv", [a, b])
    c = tmp_path / "c.csv"  # parts are told apart by content, whatever their name
    c.write_text('{"path": "p/3.jpg", "label": "negative", "negative": 0.8, "neutral": 0.1, "positive": 0.1}\n')
    assert merge_parts(tmp_path / "all.csv", [a, c]).rows == 2
    result = runner.invoke(app, ["merge", str(tmp_path / "all.txt"), str(a)])
    assert result.exit_code == 2 and "'.txt', which names no results format" in result.output
    assert not (tmp_path / "all.txt").exists()


def test_merge_never_replaces_results_without_overwrite(tmp_path: Path) -> None:
    part = _write_csv(tmp_path / "p.csv", ["a.jpg", "b.jpg"])
    out = _write_csv(tmp_path / "all.csv", ["x.jpg", "y.jpg", "z.jpg"])
    before = out.read_bytes()
    with pytest.raises(OutputExistsError, match=r"already holds results \(4 lines\); nothing was changed\. Pass --overwrite"):
        merge_parts(out, [part])
    assert out.read_bytes() == before

    result = CliRunner().invoke(app, ["merge", str(out), str(part)])
    assert result.exit_code == 2 and "--overwrite" in result.output and out.read_bytes() == before
    result = CliRunner().invoke(app, ["merge", str(out), str(part), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert [r["path"] for r in csv.DictReader(out.open(encoding="utf-8"))] == ["a.jpg", "b.jpg"]


def test_merge_checks_its_output_before_reading_parts(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(OutputNotWritableError, match=r"Cannot write the merged file .*blocker' is a file, not a folder"):
        merge_parts(tmp_path / "blocker" / "all.csv", [tmp_path / "missing-part.csv"])
