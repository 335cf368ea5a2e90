"""``imgsent report``: reading results, sampling, escaping, and the page in headless Chromium."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from imgsent.cli.app import app
from imgsent.errors import InputNotFoundError, ResultsFileError
from imgsent.report import read_results, sample_evenly, write_report
from tests.conftest import make_photo

pytest.importorskip("jinja2", reason="needs the report extra: pip install 'imgsent[report]'")

HOSTILE = ['<script>.jpg', '<img src=x onerror="document.title=1">.jpg']


def _results(tmp_path: Path, n: int = 12) -> Path:
    """Real images and a classify-style CSV: n rows, hostile names, one missing file, one error row."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    rows = []
    names = HOSTILE + [f"p{i}.jpg" for i in range(n - len(HOSTILE))]
    for i, name in enumerate(names):
        make_photo(folder / name, size=(60 + i, 40), seed=i)
        conf = 0.4 + 0.5 * i / n
        label = "positive" if i % 3 else "negative"
        probs = {"negative": 1 - conf, "neutral": 0.0, "positive": conf} if label == "positive" else \
                {"negative": conf, "neutral": 0.0, "positive": 1 - conf}
        rows.append({"path": f"imgs/{name}", "label": label, "confidence": conf, **probs, "error": ""})
    rows.append({"path": "imgs/gone.jpg", "label": "negative", "confidence": 0.9, "negative": 0.9, "neutral": 0.0,
                 "positive": 0.1, "error": ""})
    rows.append({"path": "imgs/<b>bad</b>.jpg", "label": "", "confidence": "", "negative": "", "neutral": "",
                 "positive": "", "error": "cannot identify <script>alert(1)</script>"})
    path = tmp_path / "out.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_read_results_csv_jsonl_old_and_malformed(tmp_path: Path) -> None:
    rows = read_results(_results(tmp_path))
    assert len(rows) == 14 and sum(r.error is not None for r in rows) == 1
    old = tmp_path / "old.jsonl"  # no confidence column (written before it existed), one torn line
    old.write_text(json.dumps({"path": "a.jpg", "label": "negative", "negative": 0.7, "neutral": 0.1, "positive": 0.2,
                               "error": None}) + "\n{\"path\": \"b.jp\n")
    a, b = read_results(old)
    assert (a.label, a.confidence) == ("negative", 0.7)
    assert b.error == "malformed JSON line in the results file"
    with pytest.raises(InputNotFoundError, match="Results file not found"):
        read_results(tmp_path / "nope.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ResultsFileError, match="not a classify output"):
        read_results(tmp_path / "other.csv")


def test_sample_evenly_keeps_both_ends() -> None:
    assert sample_evenly(list(range(100)), 5) == [0, 25, 50, 74, 99]
    assert sample_evenly([1, 2], 5) == [1, 2]


def test_report_is_escaped_sampled_and_self_contained(tmp_path: Path) -> None:
    results = _results(tmp_path)
    summary = write_report(results, tmp_path / "r.html", model="<i>m</i>", images_root=tmp_path, max_per_label=3)
    html = (tmp_path / "r.html").read_text()
    assert "<script" not in html and "onerror=" not in html.replace("onerror=&#34;", "")
    assert "&lt;script&gt;.jpg" in html and "&lt;i&gt;m&lt;/i&gt;" in html
    assert "cannot identify &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert summary.rows == 14 and summary.errors == 1 and summary.shown == 6
    assert html.count('<figure class="thumb"') == 6
    assert "shows <strong>6</strong> of 13 classified images" in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing fetched from the network
    # histogram over all rows, not only the shown ones: 5 negative rows across the bars
    negative = html.split('aria-label="histogram of confidence for negative"')[1].split("</svg>")[0]
    assert sum(int(c) for c in re.findall(r": (\d+)</title>", negative)) == 5


def test_report_cli_and_classify_report(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    for i in range(3):
        make_photo(tmp_path / "photos" / f"{i}.png", seed=i)
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"not a jpeg")
    runner = CliRunner()
    result = runner.invoke(app, ["classify", "photos", "-o", "out.jsonl", "--report", "run.html", "-m", str(tiny_model_dir),
                                 "--device", "cpu", "--workers", "0"])
    assert result.exit_code == 3, result.output  # one unreadable file
    html = (tmp_path / "run.html").read_text()
    assert html.count('<figure class="thumb"') == 3 and html.count("data:image/jpeg;base64,") == 3
    assert 'id="error-count">1<' in html and "broken.jpg" in html
    again = runner.invoke(app, ["report", "out.jsonl", "-o", "again.html"])
    assert again.exit_code == 0 and "3 thumbnails, 1 errors" in again.output
    missing = runner.invoke(app, ["report", "nope.csv"])
    assert missing.exit_code == 2 and "Results file not found" in missing.output  # a usage error
    assert runner.invoke(app, ["classify", "photos", "--report", "x.html"]).exit_code == 2  # needs --output


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    pytest.skip("headless Chromium not found (apt-get install chromium)")


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=/tmp/imgsent-chromium-test", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.slow
def test_report_in_headless_chromium(tmp_path: Path) -> None:
    summary = write_report(_results(tmp_path), tmp_path / "r.html", images_root=tmp_path, max_per_label=4)
    url = (tmp_path / "r.html").resolve().as_uri()
    dom = _browser("--dump-dom", url).stdout
    assert dom.count('class="thumb"') == summary.shown == 8
    assert dom.count("<img ") == 7  # one thumbnail per shown image; the missing file gets a placeholder
    assert "<title>imgsent report" in dom and "<script" not in dom  # the hostile names did not run
    assert '<img src="x"' not in dom
    shot = tmp_path / "shot.png"
    _browser("--screenshot=" + str(shot), "--window-size=1000,1400", url)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 10 and (pixels < 250).mean() > 0.05  # not blank


def test_report_shows_the_model_recorded_in_the_sidecar(tmp_path: Path) -> None:
    from imgsent.results import RunRecord, write_record

    results = _results(tmp_path)
    write_record(results, RunRecord("csv", "org/imgsent-vit", "0123abc", "float32", True, str(tmp_path), "0.1.0", 0.5,
                                    "onnxruntime"))
    write_report(results, tmp_path / "r.html", images_root=tmp_path, max_per_label=2)
    html = (tmp_path / "r.html").read_text()
    assert "org/imgsent-vit (revision 0123abc, engine onnxruntime, float32, binary)" in html
    write_report(results, tmp_path / "r.html", model="given", images_root=tmp_path, max_per_label=2)
    assert "model <code>given</code>" in (tmp_path / "r.html").read_text()
    (tmp_path / "out.csv.imgsent.json").unlink()
    write_report(results, tmp_path / "r.html", images_root=tmp_path, max_per_label=2)
    assert "not recorded in the results file" in (tmp_path / "r.html").read_text()
