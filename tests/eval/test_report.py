"""``ausynth report``: HTML + JSON from an evaluation directory, rendered in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval.report import build_parser, main
from eval.summary import best_model, replacement

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.fixture(scope="module")
def report(evaluated, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(build_parser().parse_args([str(evaluated), "--out", str(out), "--grid-faces", "2"])) == 0
    return out


def test_html_is_self_contained_with_tables_plots_and_grids(report):
    html = report.read_text()
    assert html.count("<table") >= 19                        # one per metric, plus grids/provenance
    assert "&#9733;" in html and 'class="best"' in html     # best cell per column marked
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 10
    assert not re.search(r'(src|href)="(https?:|file:|/)', html)  # nothing loaded from elsewhere
    from aukit.aus import EMOTION_PROTOTYPES

    proto = " ".join(f"{a}={v:g}" for a, v in sorted(EMOTION_PROTOTYPES["happiness"].items()))
    for text in ("fer2013-minixception-penultimate-128", "emotion prototypes", "AU sweeps",
                 "Package versions", "training config of tiny", f"happiness ({proto})"):
        assert text in html, text


def test_json_summary_holds_the_same_numbers(report, evaluated):
    summary = json.loads(report.with_suffix(".json").read_text())
    lines = [json.loads(l) for l in (evaluated / "metrics.jsonl").read_text().splitlines()]
    for rec in lines:
        cell = summary["matrix"][rec["metric"]][rec["model"]][rec["test_set"]]
        assert cell["value"] == rec["value"] and cell["ci_low"] == rec["ci_low"]
    assert summary["best"]["au_mae_target"]["syn"] == "tiny"   # the baseline is never ranked
    assert summary["models"]["tiny"]["real_share"] == 0.0
    assert summary["efficiency"]["au_mae_target"]["syn"][0]["model"] == "tiny"


def test_ranking_rules():
    cells = {"a": {"value": 0.2}, "b": {"value": -0.1}, "no-edit": {"value": 0.0}}
    assert best_model(cells, "lower") == "b" and best_model(cells, "higher") == "a"
    assert best_model(cells, "zero") == "b" and best_model(cells, "info") is None
    pts = [{"model": "s", "share": 0.0, "value": 1.0, "ci_low": 0.9, "ci_high": 1.1},
           {"model": "m", "share": 0.5, "value": 0.55, "ci_low": 0.5, "ci_high": 0.6},
           {"model": "r", "share": 1.0, "value": 0.5, "ci_low": 0.45, "ci_high": 0.56}]
    rep = replacement(pts, "lower")
    assert rep["min_share_matching_real"] == 0.5 and rep["synthetic_share_replaced"] == 0.5
    assert rep["significantly_better_than_real_only"] == []
    assert replacement(pts, "higher")["significantly_better_than_real_only"] == ["s"]


def test_report_errors(tmp_path, capsys):
    assert main(build_parser().parse_args([str(tmp_path), "--out", str(tmp_path / "r.html")])) == 2
    assert "not an evaluation directory" in capsys.readouterr().err


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium for the screenshot (apt-get install chromium; "
                    "scripts/setup.sh installs it with AUSYNTH_WITH_CHROMIUM=1)")
def test_html_renders_in_headless_chromium(report, tmp_path):
    png = tmp_path / "report.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'prof'}",
           f"--screenshot={png}", "--window-size=1400,3000", report.resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120)
    assert png.is_file(), "chromium wrote no screenshot"
    im = np.asarray(Image.open(png).convert("RGB"), np.float64)
    assert im.shape[:2] == (3000, 1400)
    assert im.std() > 20                                 # not a blank page
    assert (im.mean(axis=2) < 100).mean() > 0.01         # text, tables and images drawn
    keep = os.environ.get("AUSYNTH_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(png, keep)


def test_plots_accept_points_outside_their_interval():
    """FD's bootstrap interval can sit above its (biased) point estimate: plots must cope."""
    from eval import plots
    pts = [{"share": 0.0, "value": 1.0, "ci_low": 1.2, "ci_high": 1.5},
           {"share": 1.0, "value": 2.0, "ci_low": 1.9, "ci_high": None}]
    assert plots.efficiency_plot({"fd": {"real": pts}}, ["fd"], {})
    assert plots.per_au_plot({"m": {"AU12": {"value": 1.0, "ci_low": 1.1, "ci_high": 1.3}}}, "t", "y")


def test_significance_of_the_best_cell():
    from eval.summary import best_is_significant
    cells = {"a": {"value": 1.0, "ci_low": 0.9, "ci_high": 1.1}, "b": {"value": 2.0, "ci_low": 1.8, "ci_high": 2.2},
             "no-edit": {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0}}
    assert best_is_significant(cells, "a", "lower")
    cells["b"]["ci_low"] = 1.05
    assert not best_is_significant(cells, "a", "lower")
