"""Shards (``--shard K/N``, torchrun ranks) and ``imgsent merge``: real files, the real CLI."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.errors import InvalidConfigError
from imgsent.merge import merge_parts
from imgsent.shard import (
    Shard,
    iter_shard_files,
    part_path,
    plan_shard,
    shard_from_env,
    shard_key,
)

runner = CliRunner()


def _classify(model: Path, args: list[str], env: dict[str, str] | None = None) -> None:
    result = runner.invoke(
        app,
        ["classify", *args, "-m", str(model), "--device", "cpu", "--dtype", "float32", "-w", "0", "-r", "-b", "4"],
        env=env,
    )
    assert result.exit_code in (0, 3), result.output  # 3: finished with an error row (broken.jpg)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_shard_parse_and_errors() -> None:
    assert Shard.parse(" 2/5 ") == Shard(2, 5)
    for bad in ("3/3", "-1/3", "1", "a/b", "0/0"):
        with pytest.raises(InvalidConfigError, match="K/N"):
            Shard.parse(bad)


def test_split_ignores_where_the_folder_is_mounted(tree: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "mounted"
    shutil.copytree(tree, copy)
    for k in range(3):
        here = [shard_key(p, [str(tree)]) for p in iter_shard_files([tree], Shard(k, 3), recursive=True)]
        there = [shard_key(p, [str(copy)]) for p in iter_shard_files([copy], Shard(k, 3), recursive=True)]
        assert here == there
    assert shard_key(str(tree / "2026" / "x1.jpg"), [str(tree)]) == "2026/x1.jpg"


def test_three_shards_give_every_image_once_with_the_same_probabilities(
    tiny_model_dir: Path, tree: Path, tmp_path: Path
) -> None:
    whole = tmp_path / "whole.csv"
    _classify(tiny_model_dir, [str(tree), "-o", str(whole)])
    parts = [tmp_path / f"part-{k}.csv" for k in range(3)]
    for k, part in enumerate(parts):
        _classify(tiny_model_dir, [str(tree), "-o", str(part), "--shard", f"{k}/3"])
    sizes = [len(_rows(p)) for p in parts]
    assert sum(sizes) == 21 and min(sizes) > 0
    shard_paths = [r["path"] for p in parts for r in _rows(p)]
    assert sorted(shard_paths) == sorted(r["path"] for r in _rows(whole))  # each image exactly once

    merged = tmp_path / "merged.csv"
    result = runner.invoke(app, ["merge", str(merged), *map(str, parts), "--inputs", str(tree), "-r"])
    assert result.exit_code == 0, result.output
    assert "21 rows (1 errors) from 3 parts" in result.output
    assert merged.read_text(encoding="utf-8") == whole.read_text(encoding="utf-8")  # same rows, order, digits


def test_shard_with_resume_finishes_only_its_part(tiny_model_dir: Path, tree: Path, tmp_path: Path) -> None:
    part = tmp_path / "part-1.csv"
    _classify(tiny_model_dir, [str(tree), "-o", str(part), "--shard", "1/3"])
    complete = part.read_text(encoding="utf-8")
    lines = complete.splitlines(keepends=True)
    part.write_text("".join(lines[:3]) + lines[3][:10], encoding="utf-8")  # two rows and a torn one
    _classify(tiny_model_dir, [str(tree), "-o", str(part), "--shard", "1/3", "--resume"])
    assert sorted(complete.splitlines()) == sorted(part.read_text(encoding="utf-8").splitlines())


def test_torchrun_environment_sets_shard_part_file_and_device(tiny_model_dir: Path, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    for rank in range(2):
        env = {"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}
        _classify(tiny_model_dir, [str(tree), "-o", str(out)], env=env)
    parts = sorted(tmp_path.glob("out.part-*.jsonl"))
    assert [p.name for p in parts] == ["out.part-00000-of-00002.jsonl", "out.part-00001-of-00002.jsonl"]
    assert not out.exists()
    merged = tmp_path / "merged.csv"
    summary = merge_parts(merged, parts, inputs=[tree], recursive=True)
    assert summary.rows == 21 and summary.errors == 1
    assert sorted(summary.parts.values()) == sorted(len(p.read_text().splitlines()) for p in parts)


def test_plan_shard_rules() -> None:
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}
    assert shard_from_env({"WORLD_SIZE": "1", "RANK": "0"}) is None
    plan = plan_shard(None, "runs/out.csv", device="cpu", environ=env)
    assert plan.shard == Shard(3, 4) and plan.output == part_path("runs/out.csv", Shard(3, 4)) and plan.device == "cpu"
    assert plan_shard("1/2", "a.csv", environ={}).output == Path("a.csv")
    with pytest.raises(InvalidConfigError, match="torchrun launch of 4 processes"):
        plan_shard("1/2", "a.csv", environ=env)
    with pytest.raises(InvalidConfigError, match="pass --output"):
        plan_shard(None, None, environ=env)
    with pytest.raises(InvalidConfigError, match="must be integers"):
        shard_from_env({"WORLD_SIZE": "two"})


def test_cli_rejects_a_bad_shard_with_exit_2(tiny_model_dir: Path, tree: Path) -> None:
    result = runner.invoke(app, ["classify", str(tree), "-m", str(tiny_model_dir), "--shard", "3/3"])
    assert result.exit_code == 2
    assert "0 <= K < N" in result.output


@pytest.mark.slow
def test_real_torchrun_launch_writes_one_part_per_rank(tiny_model_dir: Path, tree: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    out = tmp_path / "out.csv"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "imgsent", "classify", str(tree), "-r", "-o", str(out), "-m", str(tiny_model_dir),
        "--device", "cpu", "--dtype", "float32", "-w", "0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, check=False)
    parts = sorted(tmp_path.glob("out.part-*-of-00002.csv"))
    assert done.returncode == 0, done.stderr[-2000:]  # error rows must not make torchrun stop the other rank
    assert len(parts) == 2
    summary = merge_parts(tmp_path / "all.csv", parts, inputs=[tree], recursive=True)
    assert summary.rows == 21 and summary.errors == 1
