"""Every docstring example in the imgsent package runs as a doctest.

Examples run in an empty temporary folder holding links to the repository's ``examples/`` and
``recipes/``, so they can read ``examples/images/...`` and write files without touching the
checkout.

Examples that cannot run offline or quickly (Hub uploads, other people's files) are marked
``# doctest: +SKIP`` in the docstring; everything else must print exactly what it shows.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import imgsent

REPO = Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules_with_examples() -> list[str]:
    """Modules whose source holds a ``>>>`` prompt (read as text: collecting imports nothing)."""
    package = Path(imgsent.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__main__" or ">>> " not in path.read_text(encoding="utf-8"):
            continue
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    assert {"imgsent", "imgsent.predictor", "imgsent.images", "imgsent.hub.download"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for folder in ("examples", "recipes"):
        (tmp_path / folder).symlink_to(REPO / folder, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [test for test in finder.find(module) if test.examples]
    assert tests, f"{name} has '>>> ' in its source but no docstring example"
    for test in tests:
        runner.run(test, out=_Report.write)
    failed, attempted = runner.failures, runner.tries
    assert failed == 0, f"{failed} of {attempted} examples in {name} failed:\n{_Report.flush()}"
    _Report.flush()


class _Report:
    """Collects the doctest runner's failure report for the assertion message."""

    lines: list[str] = []

    @classmethod
    def write(cls, text: str) -> None:
        cls.lines.append(text)

    @classmethod
    def flush(cls) -> str:
        text, cls.lines = "".join(cls.lines), []
        return text
