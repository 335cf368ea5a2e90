"""``imgsent.outputs.check_writable``: every way an output path can be unwritable, found before any work.

Tests run as root in CI containers, where a read-only permission bit does not stop a write; the
cases here fail for root too (a parent that is a file, a folder where a file is expected), and
the permission branch is driven through ``os.access``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgsent.errors import ImgsentError, OutputNotWritableError
from imgsent.outputs import check_writable, write_table


def test_a_new_nested_path_is_fine_and_nothing_is_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.csv"
    assert check_writable(target) == target
    assert not (tmp_path / "a").exists()
    assert check_writable(tmp_path / "new", folder=True) == tmp_path / "new"


def test_an_existing_file_or_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "out.csv").write_text("x")
    assert check_writable(tmp_path / "out.csv") == tmp_path / "out.csv"
    assert check_writable(tmp_path, folder=True) == tmp_path


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert check_writable("~/out.csv") == tmp_path / "out.csv"


def test_a_parent_that_is_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(OutputNotWritableError, match=r"Cannot write the report '.*blocker/deep/r.html': '.*blocker' is a file, not a folder"):
        check_writable(blocker / "deep" / "r.html", kind="report")
    with pytest.raises(OutputNotWritableError, match="is a file, not a folder"):
        check_writable(blocker / "overlays", folder=True)


def test_a_folder_where_a_file_is_expected_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputNotWritableError, match=r"it is a folder\. Pass a file path"):
        check_writable(tmp_path, kind="results file")


def test_a_file_where_a_folder_is_expected_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(OutputNotWritableError, match=r"'.*out': it is a file, not a folder"):
        check_writable(tmp_path / "out", kind="overlay folder", folder=True)


def test_a_broken_symlink_on_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    with pytest.raises(OutputNotWritableError, match="broken symbolic link"):
        check_writable(tmp_path / "link" / "out.csv")


def test_permission_denied_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "out.csv").write_text("x")
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root passes chmod 555, so fake the answer
    with pytest.raises(OutputNotWritableError, match=r"the folder '.*' is not writable"):
        check_writable(tmp_path / "new" / "out.csv")
    with pytest.raises(OutputNotWritableError, match="permission denied"):
        check_writable(tmp_path / "out.csv")


def test_the_error_is_a_permission_error_and_an_imgsent_error(tmp_path: Path) -> None:
    with pytest.raises(OutputNotWritableError) as info:
        check_writable(tmp_path)
    assert isinstance(info.value, PermissionError) and isinstance(info.value, OSError)
    assert isinstance(info.value, ImgsentError)


@pytest.mark.parametrize("name", ["index.csv", "index.jsonl"])
def test_write_table_by_extension(tmp_path: Path, name: str) -> None:
    rows = [{"source": "a.jpg", "label": "positive", "extra": 1}, {"source": "b.jpg", "error": "bad"}]
    path = write_table(tmp_path / "sub" / name, rows, ("source", "label", "error"))
    text = path.read_text(encoding="utf-8").splitlines()
    if name.endswith(".csv"):
        assert text == ["source,label,error", "a.jpg,positive,", "b.jpg,,bad"]
    else:
        assert text == ['{"source": "a.jpg", "label": "positive", "error": null}',
                        '{"source": "b.jpg", "label": null, "error": "bad"}']
