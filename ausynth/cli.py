"""``ausynth <command> ...``: dispatches to each stage's own CLI module, imported lazily.

Lazy imports keep ``ausynth render`` free of torch and ``ausynth train`` free of pyrender,
and keep ``ausynth --help`` fast.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module with `build_parser(prog)` and `main(args)`, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "render": ("synth.cli", "render a synthetic, exactly labelled dataset (GANimation format)"),
    "sheet": ("synth.sheet", "write a contact sheet PNG of a dataset, with optional mask overlays"),
    "convert": ("synth.convert", "convert a dataset between the GANimation folder and tar-shard formats"),
    "identities": ("synth.identity.cli", "build photo identities (3D reconstructions of real photos) for render"),
    "prepare": ("annotate.prepare", "turn a folder of real photos into a GANimation-format dataset"),
    "train": ("train.cli", "train GANimation on synthetic, real or mixed datasets"),
    "edit": ("train.edit", "apply target AUs to a photo with a trained GANimation checkpoint"),
    "eval": ("eval.cli", "evaluate checkpoints on test sets with independent judges"),
    "report": ("eval.report", "write the HTML/JSON report of evaluation runs"),
    "experiment": ("eval.experiment", "run the synthetic vs real vs mixed study end to end (render .. report)"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: ausynth <command> [options]   (ausynth <command> --help for details)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"ausynth: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
    except ModuleNotFoundError as exc:
        print(f"ausynth {name}: not available in this installation ({exc})", file=sys.stderr)
        return 2
    parser = module.build_parser(f"ausynth {name}")
    args = parser.parse_args(rest)
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
