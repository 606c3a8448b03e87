"""``ausynth eval`` end to end on a tiny checkpoint and tiny datasets; resume; errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval import runner
from eval.cli import build_parser, main
from eval.metrics import read_jsonl

from .conftest import SETTINGS, band_judges, run_eval

REPO = Path(__file__).resolve().parents[2]


def results(out: Path) -> dict[tuple[str, str, str], dict]:
    return {(r["model"], r["test_set"], r["metric"]): r for r in read_jsonl(out / "metrics.jsonl")}


def test_every_cell_has_its_metrics(evaluated):
    res = results(evaluated)
    for model in ("tiny", "no-edit"):
        for ts in ("real", "syn"):
            for metric in ("au_mae_target", "au_slope", "expr_acc", "id_same", "fd", "kid", "att_mean"):
                assert (model, ts, metric) in res, (model, ts, metric)
        for metric in ("au_delta_mae", "att_iou", "judge_floor_mae"):
            assert (model, "syn", metric) in res and (model, "real", metric) not in res
    assert all(set(r) >= {"value", "ci_low", "ci_high", "n", "cell_key"} for r in res.values())


def test_baseline_numbers_are_what_no_edit_implies(evaluated):
    """No edit: the band judge reads 0 on every neutral input, so the sweep error is the mean
    requested intensity (3), the response slope 0, identity distance 0, and the attention
    edits nothing: recall 0 against the AU regions."""
    res = results(evaluated)
    assert res[("no-edit", "syn", "au_mae_sweep")]["value"] == pytest.approx(3.0)
    assert res[("no-edit", "syn", "au_slope")]["value"] == pytest.approx(0.0, abs=1e-9)
    assert res[("no-edit", "real", "id_dist")]["value"] == pytest.approx(0.0, abs=1e-6)
    assert res[("no-edit", "syn", "att_recall")]["value"] == 0.0
    assert res[("no-edit", "syn", "att_mean")]["value"] == 1.0
    assert res[("no-edit", "syn", "judge_floor_mae")]["value"] == pytest.approx(0.0, abs=1e-6)


def test_cells_and_provenance_on_disk(evaluated, tiny_world):
    with np.load(evaluated / "cells" / "tiny__syn.npz") as z:
        assert z["judge_aus"].shape == (3 * 5, 17)            # 3 faces x (2 AUs x 2 + 1 emotion)
        assert z["grid_out"].shape == (2, 5, 32, 32, 3)
        assert np.isfinite(z["iou"]).any()
    info = json.loads((evaluated / "eval.json").read_text())
    assert info["models"]["tiny"]["real_share"] == 0.0
    assert info["models"]["tiny"]["sources"][0]["kind"] == "synthetic"
    assert info["identity_overlap"]["tiny"] == {"real": 0, "syn": 0}
    assert info["test_sets"]["real"]["n_faces"] == 3 and info["test_sets"]["real"]["neutral_only"]
    assert "fer2013" in info["feature_space"] and info["versions"]["torch"]


def test_rerun_resumes_without_recomputing(evaluated, tiny_world, monkeypatch):
    monkeypatch.setattr(runner, "build_judges", band_judges)
    before = (evaluated / "metrics.jsonl").read_text()
    mtimes = {p: p.stat().st_mtime_ns for p in (evaluated / "cells").glob("*.npz")}
    assert run_eval(tiny_world, evaluated) == 0
    assert (evaluated / "metrics.jsonl").read_text() == before
    assert {p: p.stat().st_mtime_ns for p in (evaluated / "cells").glob("*.npz")} == mtimes


def test_a_killed_metric_log_is_completed(evaluated, tiny_world, monkeypatch, tmp_path):
    """Drop the last lines (as if killed) and rerun: exactly the missing lines come back."""
    monkeypatch.setattr(runner, "build_judges", band_judges)
    out = tmp_path / "copy"
    import shutil
    shutil.copytree(evaluated, out)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    (out / "metrics.jsonl").write_text("\n".join(lines[:-3]) + "\n" + lines[-3][:20])
    assert run_eval(tiny_world, out) == 0
    after = results(out)
    assert len(after) == len(results(evaluated))
    assert len((out / "metrics.jsonl").read_text().splitlines()) == len(lines) + 1  # + the torn line
    assert len(read_jsonl(out / "metrics.jsonl")) == len(lines)


def test_clear_errors_for_missing_inputs(tiny_world, tmp_path, capsys):
    args = ["--checkpoint", str(tmp_path / "nope"), "--test-set", f"real:{tiny_world['real']}",
            "--out", str(tmp_path / "o")]
    assert main(build_parser().parse_args(args)) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    args = ["--checkpoint", str(tiny_world["run"]), "--test-set", f"real:{tmp_path / 'missing'}",
            "--out", str(tmp_path / "o")]
    assert main(build_parser().parse_args(args)) == 2
    assert "not found" in capsys.readouterr().err
    args = ["--checkpoint", str(tiny_world["run"]), "--test-set", f"real:{tiny_world['real']}",
            "--out", str(tmp_path / "o"), "--set", "select.n_facez=3"]
    assert main(build_parser().parse_args(args)) == 2
    assert "did you mean" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_subprocess_without_au_judge(tiny_world, tmp_path):
    """The registered command, real judges, AU judge off: runs and writes results."""
    out = tmp_path / "sub"
    cmd = [sys.executable, "-m", "ausynth.cli", "eval", "--checkpoint", f"tiny={tiny_world['run']}",
           "--test-set", f"real:{tiny_world['real']}", "--out", str(out), "--no-progress",
           "--set", "judges.au=false", *[a for s in SETTINGS for a in ("--set", s)]]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = {r["metric"] for r in read_jsonl(out / "metrics.jsonl")}
    assert "expr_acc" in metrics and "au_mae" not in metrics
