"""``ausynth eval``: edit held-out faces with GANimation checkpoints and score the edits with
independent judges, for every model x test set pair (the train-source x test-set matrix).

    ausynth eval --checkpoint synth=runs/synth --checkpoint real=runs/real \\
        --test-set real:data/real_prepared --test-set synth:data/synth_test --out runs/eval
    ausynth report runs/eval --out report.html

Writes into ``--out``: ``metrics.jsonl`` (one line per model, test set and metric, with
its bootstrap interval), ``cells/<model>__<set>.npz`` (every edit's judge outputs and a few
images), ``eval.json`` (configs, dataset manifests, judges, package versions) and
``cache/`` (judge outputs by image hash). Rerun the same command to resume: finished
cells and metric lines are kept. Definitions: docs/eval.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from aukit import atomic
from aukit.config import ConfigError, apply_override, from_dict, read_yaml, to_dict
from aukit.dataset import DatasetError
from eval.config import EvalConfig

RESULTS, CELLS, INFO = "metrics.jsonl", "cells", "eval.json"
PACKAGES = ("numpy", "scipy", "torch", "mediapipe", "ai-edge-litert", "dlib-bin", "face-recognition-models",
            "fer", "Pillow", "matplotlib", "Jinja2", "ausynth")


def build_parser(prog: str = "ausynth eval") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", action="append", default=[], metavar="[NAME=]RUN_OR_CKPT",
                   help="a run directory or checkpoint file (repeatable); NAME labels its row")
    p.add_argument("--test-set", action="append", default=[], metavar="NAME:DIR[@synthetic|@real]",
                   help="a GANimation-format dataset whose test split is edited (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="evaluation directory (created or resumed)")
    p.add_argument("--config", type=Path, help="YAML with EvalConfig keys (configs/eval/*.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--metrics", help="comma-separated metric names (default: all that apply)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--dry-run", action="store_true", help="check inputs, print the plan, exit")
    return p


def load_config(path: Path | None, overrides: list[str]) -> EvalConfig:
    data: dict[str, Any] = read_yaml(path) if path else {}
    for item in overrides:
        apply_override(data, item)
    return from_dict(EvalConfig, data)


def main(args: argparse.Namespace) -> int:
    from train.checkpoint import CheckpointError
    from eval.judges._common import JudgeModelError
    try:
        cfg = load_config(args.config, args.set)
        plan = _plan(args, cfg)
        if args.dry_run:
            _print_plan(plan)
            return 0
        from eval.runner import run_evaluation
        run_evaluation(plan, cfg, args.out, _metric_names(args.metrics), progress=not args.no_progress)
    except (ConfigError, DatasetError, CheckpointError, JudgeModelError, ValueError, FileNotFoundError) as exc:
        print(f"ausynth eval: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ausynth eval: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    print(f"ausynth eval: results in {args.out / RESULTS}; write the report with "
          f"`ausynth report {args.out} --out report.html`", file=sys.stderr)
    return 0


def _metric_names(text: str | None) -> list[str] | None:
    if not text:
        return None
    from eval.metrics import METRICS
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in METRICS]
    if bad:
        raise ValueError(f"unknown metric(s) {bad}; known: {', '.join(METRICS)}")
    return names


def _plan(args: argparse.Namespace, cfg: EvalConfig) -> dict[str, Any]:
    """Check every input before any work: checkpoints, test sets, the output folder."""
    import torch
    from eval.models import checkpoint_file, load_model, parse_checkpoint_arg
    from eval.testsets import open_test_set

    if not args.checkpoint and not cfg.baseline:
        raise ValueError("nothing to evaluate: give --checkpoint (or keep baseline: true)")
    if not args.test_set:
        raise ValueError("give at least one --test-set NAME:DIR")
    torch.set_num_threads(cfg.cpu_threads)
    device = torch.device(cfg.device)
    models = []
    for text in args.checkpoint:
        name, path = parse_checkpoint_arg(text)
        if not checkpoint_file(path).is_file():
            raise FileNotFoundError(f"--checkpoint {text}: no checkpoint at {checkpoint_file(path)}")
        models.append(load_model(name, path, device))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"two checkpoints share a name ({names}); name them: --checkpoint NAME=PATH")
    sets = [open_test_set(t, cfg.select) for t in args.test_set]
    if len({s.name for s in sets}) != len(sets):
        raise ValueError("two test sets share a name")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    return {"models": models, "sets": sets, "device": device}


def _print_plan(plan: dict[str, Any]) -> None:
    for m in plan["models"]:
        print(f"model {m.name}: {m.info['checkpoint']} (step {m.info['step']}, {m.image_size} px, "
              f"real share {m.info['real_share']})")
    for s in plan["sets"]:
        print(f"test set {s.name}: {s.root} ({s.kind}), {len(s.faces)} of {s.selection['pool']} faces")


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    try:
        repo = Path(__file__).resolve().parents[1]
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "eval", "train"],
                               capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            out["git_commit"] = head.stdout.strip() + ("+dirty(eval/train)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def write_info(out: Path, cfg: EvalConfig, plan: dict[str, Any], judges: dict[str, Any],
               extra: dict[str, Any]) -> None:
    """Write/merge ``eval.json``: what produced the numbers in ``metrics.jsonl``."""
    import json
    from eval.judges.realism import FEATURE_SPACE
    path = out / INFO
    old = json.loads(path.read_text()) if path.is_file() else {}
    info = {
        "config": to_dict(cfg), "judges": judges, "feature_space": FEATURE_SPACE,
        "models": {**old.get("models", {}), **{m.name: m.info for m in plan["all_models"]}},
        "test_sets": {**old.get("test_sets", {}), **{s.name: s.describe() for s in plan["sets"]}},
        "versions": versions(), "command": _command_line(),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra,
    }
    atomic.write_text(path, json.dumps(info, indent=1, default=_default))


def _command_line() -> str:
    """``ausynth eval ...`` as typed (also when run as ``python -m ausynth.cli eval ...``)."""
    argv = list(sys.argv)
    if len(argv) > 1 and argv[1] == "eval":
        return " ".join(["ausynth", *argv[1:]])
    return " ".join(argv)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
