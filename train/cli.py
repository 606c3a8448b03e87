"""``ausynth train``: train GANimation on synthetic, real or mixed GANimation-format data.

Examples::

    ausynth train --config configs/train/cpu-small.yaml --data real:../shared/data/ganimation_sample
    ausynth train --config configs/train/mixed.yaml --data synth:data/synth --data real:data/real \\
        --mix synth=0.5,real=0.5 --out runs/mixed
    ausynth train --resume runs/mixed                 # continue exactly where it stopped
    torchrun --nproc_per_node 4 -m train.cli --config configs/train/official.yaml --data ...
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from aukit import config as cfgmod
from aukit.dataset import DatasetError
from train.checkpoint import CheckpointError

if TYPE_CHECKING:
    from train.config import TrainConfig


def build_parser(prog: str = "ausynth train") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="YAML preset (configs/train/*.yaml); "
                   "omitted: the official defaults")
    p.add_argument("--data", action="append", default=[], metavar="NAME:DIR[@FORMAT]",
                   help="a training source (repeatable); replaces the preset's sources. "
                        "FORMAT: ganimation or openface (default: detected)")
    p.add_argument("--mix", metavar="A=W,B=W", help="per-source sampling weights, e.g. "
                   "synth=0.5,real=0.5 (default: proportional to image counts)")
    p.add_argument("--out", type=Path, help="run directory (sets run.out_dir)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.batch_size=16")
    p.add_argument("--resume", type=Path, metavar="RUN_OR_CKPT",
                   help="continue a run from its latest checkpoint, with its stored config "
                        "(--set still applies)")
    p.add_argument("--stop-after", type=int, metavar="STEPS",
                   help="save and stop after this many critic steps (schedule unchanged)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved config and exit")
    return p


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The run's TrainConfig from a preset or checkpoint, --data/--mix/--out and --set."""
    from train import checkpoint
    from train.config import TrainConfig, load_config, with_sources

    overrides = list(args.set)
    if args.out is not None:
        overrides.append(f"run.out_dir={args.out}")
    if args.resume is not None:
        if args.config or args.data or args.mix:
            raise cfgmod.ConfigError("--resume uses the config stored in the checkpoint; "
                                     "drop --config/--data/--mix (use --set to change it)")
        data = checkpoint.load(args.resume)["config"]
        if args.out is None:  # continue in the run directory the checkpoint belongs to
            overrides.append(f"run.out_dir={_run_dir_of(args.resume)}")
        for item in overrides:
            cfgmod.apply_override(data, item)
        return cfgmod.from_dict(TrainConfig, data)
    cfg = with_sources(load_config(args.config, overrides), args.data, args.mix)
    # Absolute data paths in the stored config, so --resume works from any directory.
    sources = tuple(replace(s, path=Path(s.path).absolute()) for s in cfg.data.sources)
    return replace(cfg, data=replace(cfg.data, sources=sources))


def _run_dir_of(path: Path) -> Path:
    return path if path.is_dir() else path.parent.parent


def _check_sources(cfg: TrainConfig) -> None:
    if not cfg.data.sources:
        raise cfgmod.ConfigError("no training data: pass --data NAME:DIR (e.g. "
                                 "--data real:../shared/data/ganimation_sample)")
    for s in cfg.data.sources:
        if not Path(s.path).is_dir():
            raise DatasetError(f"data source {s.name!r}: folder not found: {s.path}")


def main(args: argparse.Namespace) -> int:
    try:
        cfg = resolve_config(args)
        _check_sources(cfg)
    except (cfgmod.ConfigError, DatasetError, CheckpointError) as exc:
        print(f"ausynth train: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(cfgmod.dump_yaml(cfg), end="")
        return 0
    from train import ddp
    from train.loop import TrainingDiverged, training_loop
    try:
        result = training_loop(cfg, resume=args.resume, stop_after=args.stop_after)
    except (cfgmod.ConfigError, DatasetError, CheckpointError, FileExistsError) as exc:
        print(f"ausynth train: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"ausynth train: training diverged: {exc}", file=sys.stderr)
        return 3
    finally:
        ddp.shutdown()
    state = "interrupted" if result.interrupted else "stopped"
    if int(os.environ.get("RANK", "0")) == 0:
            print(f"ausynth train: {state} at step {result.step}/{result.total_steps}; "
              f"run directory {result.run_dir}", file=sys.stderr)
    return 130 if result.interrupted else 0


if __name__ == "__main__":  # torchrun -m train.cli ...
    sys.exit(main(build_parser("python -m train.cli").parse_args()))
