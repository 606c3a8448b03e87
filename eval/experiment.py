"""The end-to-end study: render, prepare, train synthetic/real/mixed models, evaluate, report.

    ausynth experiment --config configs/experiment/cpu-study.yaml --out runs/study
    python -m eval.experiment ...            # the same

Stages (each a subprocess of the ``ausynth`` commands, each skipped when its done-marker
holds the same settings digest; the commands themselves resume partial work, so killing
the driver at any moment and rerunning it continues):

1. ``synth``: ``ausynth render`` of the synthetic training set.
2. ``synth_test``: a neutral, identity-unseen synthetic test set (another seed) plus its
   per-AU companion regions (:mod:`eval.regions`).
3. ``real``: a seeded subset of whole identities of ``labels_csv`` (symlinks) prepared by
   ``ausynth prepare`` with the pseudo-labelling annotator and an identity-disjoint split.
4. ``train:<model>``: ``ausynth train`` per model (same steps), ``train.parallel`` at once.
5. ``eval``: ``ausynth eval`` of every model on both test sets, split over
   ``eval.parallel`` processes (baseline row in the first).
6. ``report``: ``ausynth report`` -> ``report.html`` + ``summary.json``.

``experiment.json`` in ``--out`` records the resolved config, every command with its wall
and CPU time, each stage's wall time and the machine's load average around it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from aukit import atomic
from aukit.config import ConfigError, apply_override, from_dict, read_yaml, to_dict
from eval.experiment_config import ExperimentConfig, ModelSpec

REPO = Path(__file__).resolve().parents[1]
AUSYNTH = [sys.executable, "-m", "ausynth.cli"]


class Study:
    """One study directory: paths, stage bookkeeping and the command log."""

    def __init__(self, cfg: ExperimentConfig, out: Path):
        self.cfg, self.out = cfg, out.resolve()
        self.data, self.runs = self.out / "data", self.out / "train"
        self.log: dict[str, Any] = {"config": to_dict(cfg), "stages": {}, "commands": []}
        path = self.out / "experiment.json"
        if path.is_file():
            self.log["stages"] = json.loads(path.read_text()).get("stages", {})

    def _marker(self, stage: str) -> Path:
        return self.out / ".done" / stage.replace(":", "_")

    def digest(self, stage: str, settings: Any) -> str:
        return hashlib.sha1(json.dumps([stage, settings], sort_keys=True, default=str).encode()).hexdigest()

    def done(self, stage: str, settings: Any) -> bool:
        m = self._marker(stage)
        return m.is_file() and m.read_text().strip() == self.digest(stage, settings)

    def mark(self, stage: str, settings: Any, seconds: float, load: tuple[float, float]) -> None:
        atomic.write_text(self._marker(stage), self.digest(stage, settings) + "\n")
        self.log["stages"][stage] = {"wall_s": round(seconds, 1), "load_avg_1min": [round(v, 2) for v in load],
                                     "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.save()

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self.out / "experiment.json", json.dumps(self.log, indent=1, default=str))

    def run(self, cmd: list[str], log_name: str) -> None:
        """Run a command (cwd = repository), output to ``logs/<log_name>.log``; raise on failure.

        Records the command with its wall time and CPU time (its own rusage from ``wait4``,
        which includes the descendants it waited for), so parallel stages are not mixed up."""
        logs = self.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        t0 = time.time()
        with open(logs / f"{log_name}.log", "a") as fh:
            proc = subprocess.Popen([str(c) for c in cmd], cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        self.log["commands"].append({"cmd": " ".join(str(c) for c in cmd), "wall_s": round(time.time() - t0, 1),
                                     "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "status": proc.returncode})
        self.save()
        if proc.returncode != 0:
            raise RuntimeError(f"{log_name}: command failed with status {proc.returncode}: "
                               f"{' '.join(map(str, cmd))} (see {logs / (log_name + '.log')})")

    def stage(self, name: str, settings: Any, fn) -> None:
        """Run ``fn()`` unless the stage is done with these settings; record its times."""
        if self.done(name, settings):
            print(f"[study] {name}: done, skipped", flush=True)
            return
        print(f"[study] {name}: running", flush=True)
        t0, load0 = time.time(), os.getloadavg()[0]
        fn()
        self.mark(name, settings, time.time() - t0, (load0, os.getloadavg()[0]))
        print(f"[study] {name}: finished in {time.time() - t0:.0f} s", flush=True)


# ----------------------------------------------------------------------------- stages

def render_synth(st: Study) -> None:
    c = st.cfg
    st.run([*AUSYNTH, "render", "--n", c.synth.n, "--seed", c.seed, "--out", st.data / "synth",
            "--workers", c.synth.workers, "--set", f"output.size={c.image_size}",
            *[a for s in c.synth.set for a in ("--set", s)]], "synth")


def render_synth_test(st: Study) -> None:
    from eval.regions import build, write_au_table
    c, t = st.cfg, st.cfg.synth_test
    zero = write_au_table(st.data / "zero_aus", np.zeros(17))
    st.run([*AUSYNTH, "render", "--n", t.n, "--seed", c.seed + t.seed_offset, "--out", st.data / "synth_test",
            "--workers", c.synth.workers, "--set", f"output.size={c.image_size}",
            "--set", "expression.weights={dataset: 1.0}", "--set", f"expression.dataset={zero.resolve()}",
            "--set", "expression.dataset_jitter=0", "--set", "expression.blink_probability=0",
            "--set", "identity.test_fraction=0", *[a for s in t.set for a in ("--set", s)]], "synth_test")
    build(st.data / "synth_test", workers=c.synth.workers)


def real_subset(st: Study) -> tuple[Path, Path]:
    """Symlink folder + labels CSV of ``n_photos`` photos of whole, seeded-random identities."""
    r = st.cfg.real
    labels = (REPO / r.labels_csv).resolve()
    images = (REPO / r.images).resolve()
    if not labels.is_file() or not images.is_dir():
        raise FileNotFoundError(f"real data not found: {labels} / {images}")
    with labels.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    people = sorted({row["identity"] for row in rows})
    order = np.random.default_rng(st.cfg.seed).permutation(len(people))
    by_person: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_person.setdefault(row["identity"], []).append(row)
    chosen: list[dict[str, str]] = []
    for i in order:
        if len(chosen) >= r.n_photos:
            break
        chosen += by_person[people[i]]
    folder, table = st.data / "real_photos", st.data / "real_labels.csv"
    folder.mkdir(parents=True, exist_ok=True)
    for row in chosen:
        link = folder / row["image"]
        if not link.exists():
            link.symlink_to(images / row["image"])
    with table.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(chosen)
    return folder, table


def prepare_real(st: Study) -> None:
    r = st.cfg.real
    folder, table = real_subset(st)
    st.run([*AUSYNTH, "prepare", "--images", folder, "--labels-csv", table, "--out", st.data / "real",
            "--size", r.size, "--workers", r.workers, "--test-fraction", r.test_fraction,
            "--seed", st.cfg.seed, "--annotator", r.annotator, "--no-progress"], "real")


def train_command(st: Study, m: ModelSpec) -> list[Any]:
    from train.config import load_config
    t = st.cfg.train
    preset = load_config(REPO / t.config, [])
    epochs = preset.optim.epochs_constant + preset.optim.epochs_decay
    if t.steps % epochs:
        raise ConfigError(f"train.steps={t.steps} must be a multiple of the preset's {epochs} epochs")
    run = st.runs / m.name
    common = ["--set", f"optim.epoch_images={t.steps // epochs * preset.optim.batch_size}",
              "--set", f"model.image_size={st.cfg.image_size}", "--set", "run.cpu_threads=1",
              "--set", "data.workers=0", "--set", "run.progress=false", "--set", f"run.seed={st.cfg.seed}",
              *[a for s in t.set for a in ("--set", s)]]
    if (run / "checkpoints" / "latest.pt").is_file():
        return [*AUSYNTH, "train", "--resume", run, *common]
    data = []
    if m.real_share < 1:
        data += ["--data", f"synth:{st.data / 'synth'}"]
    if m.real_share > 0:
        data += ["--data", f"real:{st.data / 'real'}"]
    mix = ["--mix", f"synth={1 - m.real_share:g},real={m.real_share:g}"] if 0 < m.real_share < 1 else []
    return [*AUSYNTH, "train", "--config", REPO / t.config, *data, *mix, "--out", run, *common]


def train_all(st: Study) -> None:
    def one(m: ModelSpec) -> None:
        st.stage(f"train:{m.name}", [to_dict(m), to_dict(st.cfg.train), st.cfg.image_size],
                 lambda: st.run(train_command(st, m), f"train_{m.name}"))
    with ThreadPoolExecutor(st.cfg.train.parallel) as pool:
        list(pool.map(one, st.cfg.train.models))


def eval_dirs(st: Study) -> list[Path]:
    n = min(st.cfg.eval.parallel, len(st.cfg.train.models))
    return [st.out / f"eval_{i}" for i in range(n)]


def evaluate(st: Study) -> None:
    dirs = eval_dirs(st)
    groups = [st.cfg.train.models[i::len(dirs)] for i in range(len(dirs))]

    def one(i: int) -> None:
        cmd = [*AUSYNTH, "eval", "--config", REPO / st.cfg.eval.config, "--out", dirs[i], "--no-progress",
               "--test-set", f"real:{st.data / 'real'}", "--test-set", f"synth:{st.data / 'synth_test'}#all",
               *[a for m in groups[i] for a in ("--checkpoint", f"{m.name}={st.runs / m.name}")],
               *[a for s in st.cfg.eval.set for a in ("--set", s)]]
        if i > 0:
            cmd += ["--set", "baseline=false"]
        st.run(cmd, f"eval_{i}")
    with ThreadPoolExecutor(len(dirs)) as pool:
        list(pool.map(one, range(len(dirs))))


def report(st: Study) -> None:
    st.save()
    st.run([*AUSYNTH, "report", *eval_dirs(st), "--out", st.out / "report.html", "--json",
            st.out / "summary.json", "--title", st.cfg.title, "--provenance", st.out / "experiment.json",
            "--grid-faces", "2"], "report")


def run_study(cfg: ExperimentConfig, out: Path, stop_after: str | None = None) -> Path:
    st = Study(cfg, out)
    st.save()
    t0 = time.time()
    plan = [("synth", to_dict(cfg.synth), render_synth),
            ("synth_test", [to_dict(cfg.synth_test), to_dict(cfg.synth)], render_synth_test),
            ("real", to_dict(cfg.real), prepare_real),
            ("train", None, train_all),
            ("eval", [to_dict(cfg.eval), to_dict(cfg.train)], evaluate),
            ("report", None, report)]
    for name, settings, fn in plan:
        if settings is None:
            print(f"[study] {name}", flush=True)
            fn(st)
        else:
            st.stage(name, [settings, cfg.seed, cfg.image_size], lambda fn=fn: fn(st))
        if stop_after == name:
            break
    st.log["total_wall_s_this_invocation"] = round(time.time() - t0, 1)
    st.save()
    return st.out / "report.html"


def build_parser(prog: str = "ausynth experiment") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=REPO / "configs/experiment/cpu-study.yaml")
    p.add_argument("--out", type=Path, default=Path("runs/study"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--stop-after", choices=["synth", "synth_test", "real", "train", "eval", "report"])
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    return p


def main(args: argparse.Namespace) -> int:
    try:
        data = read_yaml(args.config)
        for item in args.set:
            apply_override(data, item)
        cfg = from_dict(ExperimentConfig, data)
    except ConfigError as exc:
        print(f"ausynth experiment: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(json.dumps(to_dict(cfg), indent=1))
        return 0
    try:
        path = run_study(cfg, args.out, args.stop_after)
    except (RuntimeError, FileNotFoundError, ConfigError) as exc:
        print(f"ausynth experiment: {exc}", file=sys.stderr)
        return 1
    print(f"ausynth experiment: done; report at {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(build_parser("python -m eval.experiment").parse_args()))
