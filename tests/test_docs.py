"""The documentation site: strict build, generated CLI reference, rendered pages, docstring examples."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
HOOK = REPO / "docs" / "_hooks" / "cli_reference.py"


def _load_hook():
    spec = importlib.util.spec_from_file_location("imgsent_docs_cli_reference", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the site once with ``mkdocs build --strict`` into a temporary folder."""
    pytest.importorskip("mkdocs", reason="needs the docs extra: pip install 'imgsent[docs]'")
    pytest.importorskip("mkdocstrings", reason="needs the docs extra: pip install 'imgsent[docs]'")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=240, env=env, check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return out


def test_strict_build_produces_every_page(site: Path):
    for page in ["index.html", "getting-started/index.html", "concepts/binary-protocol/index.html",
                 "how-to/offline/index.html", "reference/cli/index.html", "reference/api/imgsent/index.html",
                 "reference/model-folder/index.html", "reference/recipe/index.html", "changelog/index.html"]:
        assert (site / page).is_file(), page
    changelog = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Unreleased" in changelog  # CHANGELOG.md is included, not copied
    api = (site / "reference" / "api" / "imgsent" / "index.html").read_text(encoding="utf-8")
    for anchor in ["imgsent.predictor.Predictor", "imgsent.quick.predict", "imgsent.outputs.Prediction",
                   "imgsent.models.sentiment.SentimentModel", "imgsent.config.ModelConfig"]:
        assert f'id="{anchor}"' in api, anchor
    assert ":meth:" not in api and ":class:" not in api


def _app_commands():
    import typer.main

    from imgsent.cli.app import app

    def walk(command, path):
        yield path, command
        if hasattr(command, "list_commands"):
            ctx = command.context_class(command, info_name=path[-1])
            for name in command.list_commands(ctx):
                yield from walk(command.get_command(ctx, name), [*path, name])

    return list(walk(typer.main.get_command(app), ["imgsent"]))


def test_cli_reference_covers_every_command_and_option():
    text = _load_hook().generate()
    for path, command in _app_commands():
        assert f"`{' '.join(path)}`" in text, path
        for param in command.params:
            if getattr(param, "hidden", False) or "--help" in getattr(param, "opts", []):
                continue
            if getattr(param, "param_type_name", "") == "option":
                assert f"`{param.opts[0]}`" in text, (path, param.opts)
    assert "**Exit codes**: 0 every file classified" in text


def test_cli_page_is_generated_in_the_site(site: Path):
    html = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "imgsent-cli-reference" not in html  # the marker was replaced
    for text in ["imgsent classify", "--resume", "imgsent evaluate", "imgsent download", "HF_TOKEN"]:
        assert text in html, text


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def _png_distinct_rows(path: Path) -> int:
    """Number of distinct scanlines (decompressed, filter byte included): a blank page has ~1."""
    data = path.read_bytes()
    pos, chunks = 8, []
    while pos < len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            chunks.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    width, height = _png_size(path)
    raw = zlib.decompress(b"".join(chunks))
    stride = len(raw) // height
    return len({raw[i * stride + 1:(i + 1) * stride] for i in range(height)})


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    ("page", "headings"),
    [
        ("index.html", ["imgsent", "What is in the package", "Where to go next"]),
        ("reference/api/imgsent/index.html", ["imgsent", "Predictor", "predict", "Prediction", "SentimentModel", "ModelConfig"]),
    ],
)
def test_rendered_page_screenshot_and_headings(site: Path, tmp_path: Path, page: str, headings: list[str]):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install it (apt-get install -y chromium) to render the site headless")
    url = (site / page).as_uri()
    shot = tmp_path / "page.png"
    result = _chromium([f"--screenshot={shot}", "--window-size=1280,1600", url], tmp_path / "profile")
    assert shot.is_file(), result.stderr[-2000:]
    assert shot.stat().st_size > 20_000
    assert _png_size(shot) == (1280, 1600)
    assert _png_distinct_rows(shot) > 100, "the screenshot looks blank"
    dom = _chromium(["--dump-dom", url], tmp_path / "profile").stdout
    import re

    found = {re.sub(r"<[^>]+>|\s+", " ", h).strip() for h in re.findall(r"<h[1-3][^>]*>(.*?)</h[1-3]>", dom, re.S)}
    found = {h.replace("¶", "").replace("class ", "").replace("function ", "").strip() for h in found}
    for heading in headings:
        assert any(heading == h or h.endswith(f" {heading}") or h.startswith(f"{heading} ") for h in found), (heading, sorted(found))


PUBLIC_API = [
    "imgsent.predictor:Predictor",
    "imgsent.predictor:Predictor.predict",
    "imgsent.predictor:Predictor.iter_predict",
    "imgsent.quick:predict",
    "imgsent.outputs:Prediction",
    "imgsent.models.sentiment:SentimentModel",
    "imgsent.config:ModelConfig",
    "imgsent.images:load_image",
    "imgsent.evaluate:evaluate_labels",
    "imgsent.hub:resolve_model_dir",
    "imgsent.hub:download_model",
    "imgsent.hub:push_to_hub",
    "imgsent.hub:cached_models",
    "imgsent.predictor:Predictor.from_pretrained",
    "imgsent.models.sentiment:SentimentModel.from_pretrained",
    "imgsent.models.sentiment:SentimentModel.save_pretrained",
    "imgsent.classify:classify_files",
    "imgsent.classify:ClassifySummary",
    "imgsent.config:ArchitectureConfig",
    "imgsent.config:PreprocessConfig",
    "imgsent.evaluate:read_labels",
    "imgsent.evaluate:EvaluationReport",
    "imgsent.registry:get_architecture",
    "imgsent.images:describe_source",
    "imgsent.scan:iter_image_files",
]


@pytest.mark.parametrize("target", PUBLIC_API)
def test_public_api_docstring_has_example(target: str):
    module_name, _, qualname = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{target} has no docstring"
    assert "Example" in doc, f"{target} docstring has no Example section"


def test_package_exports_are_documented():
    import imgsent

    page = (REPO / "docs" / "reference" / "api" / "imgsent.md").read_text(encoding="utf-8")
    for name in imgsent.__all__:
        if name.startswith("__"):
            continue
        directives = [line.strip() for line in page.splitlines() if line.startswith("::: imgsent.")]
        assert any(d.endswith(f".{name}") for d in directives), f"imgsent.{name} is not on the API page"


def test_hook_script_prints_markdown():
    result = subprocess.run([sys.executable, str(HOOK)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("## `imgsent`")
    assert "### `imgsent classify`" in result.stdout
