from __future__ import annotations

import os

from imgsent.scan import has_image_extension, iter_image_files
from tests.conftest import make_photo


def test_extensions_are_case_insensitive():
    assert has_image_extension("a.JPG") and has_image_extension("b.PnG") and has_image_extension("c.webp")
    assert not has_image_extension("notes.txt") and not has_image_extension("jpg")


def test_scan_is_sorted_and_skips_non_images_and_image_named_dirs(tmp_path):
    for name in ["b.jpg", "a.PNG", "c.txt"]:
        make_photo(tmp_path / name) if name != "c.txt" else (tmp_path / name).write_text("x")
    (tmp_path / "dir.jpg").mkdir()
    make_photo(tmp_path / "dir.jpg" / "inner.jpg")
    assert list(iter_image_files([tmp_path])) == [str(tmp_path / "a.PNG"), str(tmp_path / "b.jpg")]
    assert str(tmp_path / "dir.jpg" / "inner.jpg") in list(iter_image_files([tmp_path], recursive=True))


def test_symlink_loops_are_visited_once_and_broken_links_kept(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    make_photo(sub / "x.jpg")
    os.symlink(tmp_path, sub / "loop")
    os.symlink(tmp_path / "nowhere.jpg", tmp_path / "broken.jpg")
    os.symlink(sub / "x.jpg", tmp_path / "link.jpg")
    found = list(iter_image_files([tmp_path], recursive=True))
    assert found.count(str(sub / "x.jpg")) == 1
    assert str(tmp_path / "broken.jpg") in found  # becomes an error row, never silently lost
    assert str(tmp_path / "link.jpg") in found
    assert len(found) == 3


def test_explicit_files_are_always_yielded(tmp_path):
    odd = tmp_path / "noext"
    odd.write_bytes(b"x")
    assert list(iter_image_files([odd, tmp_path / "missing.jpg"])) == [str(odd), str(tmp_path / "missing.jpg")]


def test_missing_folder_yields_nothing(tmp_path):
    assert list(iter_image_files([tmp_path / "nope"], recursive=True)) == [str(tmp_path / "nope")]
