"""``imgsent.cli.app``: one command table, one error-to-exit-code mapping, one-line errors, fast answers."""

from __future__ import annotations

import ast
import errno
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from imgsent.cli import common
from imgsent.cli.app import app, exit_code
from imgsent.errors import (
    HubError,
    ImgsentError,
    InputNotFoundError,
    MissingExtraError,
    OutputNotWritableError,
    ResumeMismatchError,
)
from tests.conftest import make_photo

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def _command_paths(command=None, prefix=()):
    """Every command and group path under the app, e.g. ('distill', 'run')."""
    command = command or typer.main.get_command(app)
    for name in getattr(command, "commands", {}):
        sub = command.commands[name]
        yield (*prefix, name)
        yield from _command_paths(sub, (*prefix, name))


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InputNotFoundError("x"), 2),
        (OutputNotWritableError("x"), 2),
        (ResumeMismatchError("x"), 2),
        (MissingExtraError("x"), 4),
        (HubError("x"), 1),
        (ImgsentError("x"), 1),
        (OSError(errno.ENOSPC, "No space left on device"), 1),
    ],
)
def test_exit_code_of_each_error(error: BaseException, code: int) -> None:
    assert exit_code(error) == code


@pytest.mark.parametrize("path", [(), *_command_paths()], ids=lambda p: " ".join(p) or "imgsent")
def test_every_command_and_group_answers_dash_h_the_same_way(path: tuple[str, ...]) -> None:
    short = runner.invoke(app, [*path, "-h"], env={"COLUMNS": "120"})
    long = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert short.exit_code == 0 and short.output == long.output
    assert f"Usage: imgsent {' '.join(path)}".rstrip() in short.output
    assert "<bool>" not in short.output


def test_commands_are_registered_in_one_place() -> None:
    """Only app.py builds Typer apps or registers commands; command modules hold plain functions."""
    offenders = []
    for path in sorted((ROOT / "imgsent" / "cli").glob("*.py")):
        if path.name == "app.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in {
                "Typer", "command", "add_typer", "callback"
            }:
                offenders.append(f"{path.name}:{node.lineno} .{node.func.attr}(")
    assert not offenders, f"register commands in imgsent/cli/app.py only: {offenders}"
    top = typer.main.get_command(app).commands
    assert list(top) == ["classify", "merge", "models", "download", "evaluate", "report", "explain",
                         "export", "convert", "distill", "cache"]
    assert set(top["distill"].commands) == {"run", "stage", "train"}


def test_errors_print_markup_literally_once(tmp_path: Path) -> None:
    result = runner.invoke(app, ["classify", str(tmp_path / "[red]x.jpg"), "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert "[red]x.jpg" in result.output and result.output.count("error:") == 1


def test_missing_extra_names_the_extra_and_exits_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "h5py", None)  # "import h5py" now fails, as if it were not installed
    model = ROOT / "tests" / "fixtures" / "keras" / "tiny_unit_model.h5"
    result = runner.invoke(app, ["convert", "keras", str(model), "-o", str(tmp_path / "out")])
    assert result.exit_code == 4, result.output
    assert result.output.count("pip install 'imgsent[convert]'") == 1
    assert "Traceback" not in result.output


def test_a_file_system_error_mid_run_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import imgsent.report

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "r.html"))

    monkeypatch.setattr(imgsent.report, "write_report", full_disk)
    result = runner.invoke(app, ["report", str(tmp_path / "out.csv"), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: [Errno 28] No space left on device: '{tmp_path / 'r.html'}'"]


def _unwritable_cases() -> list[tuple[str, list[str]]]:
    recipe = str(ROOT / "recipes" / "default.yaml")
    return [
        ("classify -o", ["classify", "photo.jpg", "-o", "blocker/out.csv"]),
        ("classify -o folder", ["classify", "photo.jpg", "-o", "folder"]),
        ("classify --report", ["classify", "photo.jpg", "-o", "out.csv", "--report", "blocker/r.html"]),
        ("report -o", ["report", "results.csv", "-o", "blocker/r.html"]),
        ("explain -o", ["explain", "photo.jpg", "-o", "blocker/overlays"]),
        ("explain -o file", ["explain", "photo.jpg", "-o", "blocker"]),
        ("explain --index", ["explain", "photo.jpg", "-o", "overlays", "--index", "blocker/index.csv"]),
        ("evaluate --json", ["evaluate", "labels.csv", "--json", "blocker/m.json"]),
        ("evaluate --json folder", ["evaluate", "labels.csv", "--json", "folder"]),
        ("export onnx -o", ["export", "onnx", "default", "-o", "blocker/m.onnx"]),
        ("convert keras -o", ["convert", "keras", "model.h5", "-o", "blocker/model"]),
        ("download --cache-dir", ["download", "default", "--cache-dir", "blocker/cache"]),
        ("distill run -d", ["distill", "run", recipe, "-d", "blocker/work"]),
        ("distill run -o", ["distill", "run", recipe, "-d", "work", "-o", "blocker/model"]),
        ("distill train --out", ["distill", "train", "--model", "m.json", "--train", "t.jsonl", "--out", "blocker/run"]),
    ]


@pytest.mark.parametrize(("name", "args"), _unwritable_cases(), ids=[c[0] for c in _unwritable_cases()])
def test_an_unwritable_output_fails_in_one_line_before_any_model_loads(
    name: str, args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if name.startswith("distill"):
        pytest.importorskip("yaml")
        pytest.importorskip("vaderSentiment")
    from imgsent.models.sentiment import SentimentModel
    from imgsent.predictor import Predictor

    def no_loading(*a: object, **k: object) -> None:
        raise AssertionError("a model was loaded before the output was checked")

    monkeypatch.setattr(Predictor, "from_pretrained", no_loading)
    monkeypatch.setattr(SentimentModel, "from_pretrained", no_loading)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("a regular file, so nothing can be written under it, not even by root")
    (tmp_path / "folder").mkdir()
    make_photo(tmp_path / "photo.jpg")
    (tmp_path / "results.csv").write_text("path,label,confidence,negative,neutral,positive,error\n")
    (tmp_path / "labels.csv").write_text("image,label\nphoto.jpg,positive\n")
    result = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and re.match(r"error: Cannot write the [\w -]+ '(blocker|folder)[^']*': ", lines[0]), lines
    assert (tmp_path / "blocker").is_file() and not list((tmp_path / "folder").iterdir())


def test_help_version_and_models_import_no_torch() -> None:
    """``--help``, ``--version`` and ``models`` answer without importing torch (it takes seconds)."""
    script = (
        "import sys\n"
        "from imgsent.cli.app import app\n"
        "for args in (['--help'], ['--version'], ['models'], ['distill', '-h']):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (args, exc.code)\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_docs_table_lists_every_exit_code_and_command() -> None:
    text = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    rows = [line.split(" | ") for line in text.splitlines() if re.match(r"^\| \d+ \|", line)]
    documented = {int(row[0].strip("| ")) for row in rows}
    defined = {v for k, v in vars(common).items() if k.startswith("EXIT_")}
    assert documented == defined
    returned_by = {int(row[0].strip("| ")): row[-1] for row in rows}
    for code in (0, 1, 2, 130):
        assert returned_by[code].strip(" |") == "every command"
    for leaf in ("classify", "explain", "evaluate"):
        assert f"`{leaf}`" in returned_by[3]
    for leaf in ("explain", "report", "export onnx", "convert keras", "distill run", "distill stage", "distill train"):
        assert f"`{leaf}`" in returned_by[4]
