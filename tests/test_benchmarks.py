"""Smoke tests of the benchmark harness and of the GPU check's CPU dry run (tiny sizes; no timings asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.common import Summary, ratio
from benchmarks.endtoend import RunResult, memory_flatness

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], tmp_path: Path, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def test_summary_and_paired_ratios() -> None:
    s = Summary.of([3.0, 1.0, 2.0])
    assert (s.median, s.low, s.high) == (2.0, 1.0, 3.0)
    assert s.text(1) == "2.0 (1.0–3.0)"
    assert ratio([4.0, 9.0], [2.0, 3.0]).values == [2.0, 3.0]


def test_memory_flatness_tells_flat_from_growing() -> None:
    flat = RunResult(1000, 10.0, 9.0, 900.0, 500.0, [(t, 900.0, 500.0 + (t % 2)) for t in range(100)])
    growing = RunResult(1000, 10.0, 9.0, 900.0, 800.0, [(t, 900.0, 500.0 + 3 * t) for t in range(100)])
    assert memory_flatness(flat)["flat"] is True
    assert memory_flatness(growing)["flat"] is False
    assert memory_flatness(growing)["slope_mb_per_10k"] > 0


@pytest.mark.slow
def test_tiny_run_writes_every_figure_and_the_plots(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    output = tmp_path / "results.json"
    proc = _run(["-m", "benchmarks.run", "--tiny", "--workdir", str(tmp_path / "work"), "--output", str(output)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(output.read_text())
    summary = results["summary"]
    for key in ("default_stock", "default_tuned", "default_naive", "vit_stock", "vit_tuned", "vit_pipeline",
                "decode_ceiling", "default_forward_ceiling", "vit_forward_ceiling",
                "ratio_default_stock_over_naive", "ratio_vit_tuned_over_pipeline", "ratio_default_tuned_over_min_ceiling"):
        assert summary[key]["median"] > 0, key
    assert results["repeats"]["default_stock"] and results["memory_stream"]["images"] == 24
    assert set(results["decode_methods"]) == {"imgsent", "pil_full_decode", "torchvision_decode_jpeg"}
    table = output.with_suffix(".md").read_text()
    assert "| ratio | stock | tuned | target |" in table and "Command: `python -m benchmarks.run --tiny" in table

    pytest.importorskip("matplotlib")
    plots = _run(["-m", "benchmarks.plot", str(output), str(tmp_path / "plots")], tmp_path, timeout=120)
    assert plots.returncode == 0, plots.stderr[-3000:]
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {"forward_vs_batch_size.svg", "end_to_end.svg"}


@pytest.mark.slow
def test_gpu_check_cpu_dry_run(tmp_path: Path) -> None:
    output = tmp_path / "gpu.json"
    proc = _run(["benchmarks/gpu_check.py", "--device", "cpu", "--workdir", str(tmp_path), "--output", str(output)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["dry_run"] is True
    assert all(check["ok"] for check in result["correctness"].values())
    assert {"default", "vit_b16_224"} <= set(result["forward"])
    assert result["end_to_end_vit_b16_224"]["gpu_decode_img_s"] > 0
    assert result["matmul_roofline_tflops"] > 0


@pytest.mark.slow
def test_engines_benchmark_tiny(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    output = tmp_path / "engines.json"
    proc = _run(["-m", "benchmarks.engines", "--tiny", "--workdir", str(tmp_path), "--output", str(output)], tmp_path, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(output.read_text())
    run = result["runs"]["run1"]
    rows = run["forward"]["tiny ViT 32"]
    assert {(r["backend"], r["dtype"]) for r in rows} == {
        ("torch", "float32"), ("torch", "bfloat16"), ("onnxruntime", "float32"), ("openvino", "float32"), ("openvino", "bfloat16")
    }
    assert all(r["max_abs_diff_vs_torch_fp32"] <= 1e-4 for r in rows if r["dtype"] == "float32")
    assert run["classify"]["images"] == 20 and 0 <= run["classify"]["label_agreement"] <= 1
    assert result["startup"]["median_seconds"]["after"] > 0
    assert result["memory_stream"]["images"] == 200


def test_engines_results_keep_earlier_runs(tmp_path: Path) -> None:
    from benchmarks.engines import merge_results

    path = tmp_path / "engines.json"
    path.write_text(json.dumps({"runs": {"run1": {"x": 1}}, "startup": {"old": True}, "bf16": {"kept": True}}))
    merged = merge_results(path, {"runs": {"run2": {"x": 2}}, "startup": {"new": True}})
    assert merged == {"runs": {"run1": {"x": 1}, "run2": {"x": 2}}, "startup": {"new": True}, "bf16": {"kept": True}}
    assert merge_results(tmp_path / "absent.json", {"runs": {"run1": {}}}) == {"runs": {"run1": {}}}


@pytest.mark.slow
def test_video_benchmark_tiny_run(tmp_path: Path) -> None:
    pytest.importorskip("av", reason="needs the video extra")
    out = tmp_path / "video.json"
    result = _run(["-m", "benchmarks.video", "--tiny", "--workdir", str(tmp_path / "work"), "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["setup"]["clips"] == 2 and data["largest_probability_gap"] < 1e-4  # same frames, same rows
    assert data["long_clip"]["imgsent"]["frames"] == data["long_clip"]["naive"]["frames"] == 8
    assert "| ratio imgsent / naive |" in result.stdout
