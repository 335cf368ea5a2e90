"""The environment policy: offline mode, cache home, launcher variables, usable cores, read in one place."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from imgsent.environment import (
    Launch,
    cache_home,
    cuda_index,
    is_offline,
    launch_from_env,
    paper_models_url,
)
from imgsent.errors import InvalidConfigError

PACKAGE = Path(__file__).resolve().parents[1] / "imgsent"


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), ("on", True),
                                             ("0", False), ("", False), ("no", False)])
def test_offline_mode_is_parsed_as_huggingface_hub_parses_it(monkeypatch, value, expected):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert is_offline() is expected
    assert constants._is_true(value) is expected  # the hub's own reading of the same text
    assert is_offline(True) is True


def test_offline_mode_set_before_import_is_the_hubs(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert is_offline()
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert is_offline()


def test_cache_home_follows_one_rule(monkeypatch, tmp_path):
    monkeypatch.setenv("IMGSENT_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_home("engines") == tmp_path / "mine" / "engines"
    monkeypatch.setenv("IMGSENT_CACHE", "")  # empty means unset, as for XDG_CACHE_HOME
    assert cache_home("paper") == tmp_path / "xdg" / "imgsent" / "paper"
    monkeypatch.delenv("IMGSENT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert cache_home() == Path.home() / ".cache" / "imgsent"


def test_engine_and_paper_caches_derive_from_the_cache_home(monkeypatch, tmp_path):
    from imgsent.engines.cache import cache_root
    from imgsent.hub.release import release_cache

    monkeypatch.setenv("IMGSENT_CACHE", str(tmp_path))
    assert cache_root() == tmp_path / "engines"
    assert release_cache() == tmp_path / "paper"


def test_paper_models_url(monkeypatch):
    monkeypatch.delenv("IMGSENT_PAPER_MODELS_URL", raising=False)
    assert paper_models_url("https://a/b/") == "https://a/b"
    monkeypatch.setenv("IMGSENT_PAPER_MODELS_URL", "http://mirror/x/")
    assert paper_models_url("https://a/b") == "http://mirror/x"


def test_launch_variables():
    assert launch_from_env({}) == Launch(0, 1, 0)
    assert launch_from_env({"RANK": "3", "WORLD_SIZE": "4"}) == Launch(3, 4, 3)  # no LOCAL_RANK: one host
    launch = launch_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert launch.distributed and launch.cuda_index(2) == 1
    assert not launch_from_env({"WORLD_SIZE": "1"}).distributed
    with pytest.raises(InvalidConfigError, match=r"RANK='x', WORLD_SIZE='2' and LOCAL_RANK=None must be integers"):
        launch_from_env({"RANK": "x", "WORLD_SIZE": "2"})
    with pytest.raises(InvalidConfigError, match=r"RANK=2 and WORLD_SIZE=2 do not describe a launch"):
        launch_from_env({"RANK": "2", "WORLD_SIZE": "2"})


def test_one_cuda_device_per_process():
    assert cuda_index(0, 1) == 0
    with pytest.raises(InvalidConfigError, match=r"LOCAL_RANK=2 but this host has 2 CUDA device\(s\).*--nproc-per-node 2"):
        cuda_index(2, 2)


def test_environment_imports_neither_torch_nor_huggingface_hub():
    code = "import sys, imgsent.environment; print('torch' in sys.modules, 'huggingface_hub' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_only_the_environment_module_reads_the_environment():
    readers = re.compile(r"os\.environ|os\.getenv|getenv\(|sched_getaffinity|os\.cpu_count")
    found = sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if readers.search(path.read_text(encoding="utf-8"))
    )
    assert found == ["imgsent/environment.py"], found
