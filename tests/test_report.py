"""``modalfuse report``: plots, the self-contained HTML file and its Markdown summary, checked in a real browser.

The browser test drives Debian's ``chromium`` (headless) with Playwright, network blocked: only file: and data:
URLs may load. It skips with a reason when Playwright or Chromium is absent (.ci/run installs Chromium).
"""
from __future__ import annotations

import os

import io
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modalfuse.cli import main
from modalfuse.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Train through the CLI on a tiny table (image + tabular, gated fusion: it has weights), then report."""
    from conftest import build_table
    from test_cli import write_config

    root = tmp_path_factory.mktemp("report")
    csv, frame = build_table(root / "data", n=24, seed=7)
    config = write_config(root / "data", model={"fusion": {"name": "gated", "dim": 16}, "head_hidden": 8},
                          train={"max_epochs": 25, "batch_size": 8, "lr": 0.01, "patience": 0, "progress": False, "val_fraction": 0.25, "seed": 0})
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert main(["train", str(config), "--run-dir", str(root / "runs")]) == 0
    run = next((root / "runs").iterdir())
    (run / "fusion_cost_scaling.csv").write_text((REPO / "docs" / "results" / "fusion_cost_scaling.csv").read_text())
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["report", str(run), "-o", str(root / "out" / "report.html"), "--slice", "color"]) == 0
    return run, root / "out" / "report.html", out.getvalue(), frame


def test_report_is_self_contained_and_complete(report) -> None:
    run, html_path, stdout, frame = report
    text = html_path.read_text()
    assert "wrote " + str(html_path) in stdout and "## Slices" in stdout
    # no reference to anything outside the file: every src is inline data, no links, scripts or CSS imports
    srcs = re.findall(r'src="([^"]*)"', text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"<script|<link|@import|url\(|https?://(?!www\.w3\.org)", text)
    for heading in ("Data", "Training", "Test evaluation", "Robustness to missing modalities", "Fusion weights",
                    "Modality attribution", "Slices", "Robustness and cost", "Config"):
        assert f"<h2>{heading}</h2>" in text, heading
    # learning curves, confusion, reliability, subsets, weights, attribution, cost scaling
    assert len(srcs) == 7
    md = html_path.with_suffix(".md").read_text()
    assert md.count("- figure:") == 7 and "| color | blue | " in md and "image+tabular" in md
    # the data table reconciles with the run's reports
    assert f"<td>{len(frame)}</td>" in text  # the test split: 24 rows read


def test_report_errors_are_one_line(tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    from modalfuse.report.html import build_report

    with pytest.raises(ConfigError, match="holds no run"):
        build_report(tmp_path / "empty")


def test_plots_write_readable_pngs(tmp_path) -> None:
    from PIL import Image

    from modalfuse.report import plots

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    paths = [
        plots.confusion_matrix(y, np.where(rng.random(60) < 0.8, y, (y + 1) % 3), ["a", "b", "c"], tmp_path / "cm.png"),
        plots.learning_curves(pd.DataFrame({"epoch": [0, 1, 2], "train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7], "val_accuracy": [0.5, 0.7, 0.8]}), tmp_path / "lc.png"),
        plots.modality_weights(rng.dirichlet([1, 1], 50), ["a", "b"], tmp_path / "w.png"),
        plots.robustness_curves(pd.DataFrame({"modality": "a", "corruption": "noise", "level": [0.0, 0.5, 1.0], "accuracy": [0.9, 0.7, 0.4]}), tmp_path / "r.png"),
    ]
    for path in paths:
        with Image.open(path) as img:
            assert img.size[0] > 300 and len(np.unique(np.asarray(img.convert("L")))) > 20


def test_report_in_a_real_browser(report, tmp_path) -> None:
    """Network blocked, no console error, every figure decoded and rendered at a non-blank size.

    The screenshot goes to a temporary folder, or to docs/ when MODALFUSE_SCREENSHOT=1 (a test never rewrites tracked files by default).
    """
    from modalfuse.report.browser import BrowserUnavailable, check_report

    _, html_path, _, _ = report
    shot = REPO / "docs" / "report_screenshot.png" if os.environ.get("MODALFUSE_SCREENSHOT") == "1" else tmp_path / "report.png"
    try:
        check = check_report(html_path, shot)
    except BrowserUnavailable as err:
        pytest.skip(str(err))
    assert check.console_errors == [] and check.blocked == []
    assert len(check.images) == 7
    for image in check.images:
        assert image["complete"] and min(image["natural"]) > 0, image
        assert min(image["rendered"]) > 100, image
        assert image["colours"] > 10, f"{image['alt']}: rendered as a near-uniform image"
    assert check.ok


def test_browser_check_catches_blank_broken_and_remote_images(tmp_path) -> None:
    import base64

    from PIL import Image

    from modalfuse.report.browser import BrowserUnavailable, check_report

    buf = io.BytesIO()
    Image.new("RGB", (300, 300), "white").save(buf, format="PNG")
    blank = base64.b64encode(buf.getvalue()).decode()
    page = tmp_path / "bad.html"
    page.write_text(f'<html><body><img alt=blank src="data:image/png;base64,{blank}"><img alt=broken src="data:image/png;base64,AAAA" width=200 height=200>'
                    '<img alt=remote src="http://example.invalid/x.png" width=200 height=200><script>console.error("boom")</script></body></html>')
    try:
        check = check_report(page)
    except BrowserUnavailable as err:
        pytest.skip(str(err))
    by_alt = {i["alt"]: i for i in check.images}
    assert not check.ok
    assert by_alt["blank"]["natural"] == (300, 300) and by_alt["blank"]["colours"] <= 10 and not by_alt["blank"]["ok"]
    assert by_alt["broken"]["natural"] == (0, 0) and not by_alt["broken"]["ok"]
    assert check.blocked == ["http://example.invalid/x.png"]
    assert any("boom" in e for e in check.console_errors)


def test_regression_run_report(tmp_path) -> None:
    from conftest import FAST_TRAIN, build_table, modality_specs

    from modalfuse.api import MultimodalModel
    from modalfuse.report.html import build_report

    csv, frame = build_table(tmp_path / "data", n=20, seed=8)
    frame["y"] = frame["x1"] * 3.0
    frame.to_csv(csv, index=False)
    model = MultimodalModel(modality_specs("image", "tabular"), "y", {"fusion": {"name": "late"}}, FAST_TRAIN, task="regression")
    model.fit(csv, run_dir=tmp_path / "run")
    model.save(tmp_path / "run" / "model")
    from modalfuse.serve.bundle import export_bundle

    export_bundle(tmp_path / "run", tmp_path / "bundle")
    report = build_report(tmp_path / "run", data=csv, slices=["color"], bundle=tmp_path / "bundle")
    text = report.html.read_text()
    assert "<h2>Model card</h2>" in text and '&quot;task&quot;: &quot;regression&quot;' in text
    assert "confusion" not in text and "reliability" not in text
    assert report.figures == ["learning curves from metrics.csv", "test mae with only each subset of modalities present",
                              "per-sample modality weights of the fusion (test)", "modality attribution of prediction"]
    md = report.markdown.read_text()
    assert "| slice | value | n | abs_error |" in md and "| color | red | 7 |" in md
