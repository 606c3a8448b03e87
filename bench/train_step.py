"""Benchmark: images/s of one GANimation 5:1 cycle (5 critic steps, 1 generator step).

For each size (the official nets, and the cpu-small preset) it times, in the same process
and interleaved trial by trial so that machine load hits both alike:

* ``baseline``: a straight port of the official ``optimize_parameters`` (modern PyTorch
  syntax, same algorithm: generator forward with graph on every critic step, separate
  critic calls for real and fake, penalty as a second step, generator recomputed for its
  step, default Adam) fed by the official data path (a DataLoader decoding JPEGs, flip,
  ToTensor, Normalize; in-process, so that its CPU time counts);
* ``ours``: :func:`train.loop.train_step` (separate penalty step, like the baseline) fed by
  :func:`train.data.batches` from the in-memory uint8 cache;
* ``ours_combined``: the same with the single combined critic step (reported, not used
  for the ratio since it changes the algorithm).

It also measures loading alone (images/s) for the in-memory baseline (pre-made float
tensors), our cache path, our streaming decoder, and the official DataLoader (the last
two with ``--workers`` processes).

Each cycle is timed in wall-clock seconds and in this process's CPU seconds. On a shared
machine the CPU-time ratio is the robust one (other processes stretch wall time at
random); on an idle machine or a GPU the two agree.

    python bench/train_step.py                      # both sizes, results in bench/results/
    python bench/train_step.py --sizes small --repeats 5 --threads 1

Prints a table and writes ``bench/results/train_step.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aukit.config import load as load_cfg  # noqa: E402
from aukit.writer import DatasetWriter  # noqa: E402
from train.config import TrainConfig, with_sources  # noqa: E402
from train.data import Mixture, batches, load_source, preload, to_device  # noqa: E402
from train.ddp import resolve_device  # noqa: E402
from train.loop import Nets, build_nets, train_step  # noqa: E402
from train.networks import Critic, Generator  # noqa: E402

SIZES = {
    "official": ["model.image_size=128", "model.g_conv_dim=64", "model.g_res_blocks=6",
                 "model.d_conv_dim=64"],
    "small": ["model.image_size=64", "model.g_conv_dim=16", "model.g_res_blocks=2",
              "model.d_conv_dim=16"],
}
CYCLE = 5  # critic steps per generator step


# ----------------------------------------------------------------------------- baseline

class OfficialDataset(torch.utils.data.Dataset):
    """The official ``AusDataset`` path: random sample, decode, flip, ToTensor, Normalize."""

    def __init__(self, mix: Mixture, size: int):
        self.paths, self.aus = mix.paths, mix.aus_unit
        self.tf = T.Compose([T.RandomHorizontalFlip(), T.ToTensor(),
                             T.Normalize([0.5] * 3, [0.5] * 3)])
        self.size = size

    def __len__(self) -> int:
        return 10 ** 9

    def __getitem__(self, _: int):
        i = np.random.randint(len(self.paths))
        img = Image.open(self.paths[i]).convert("RGB").resize((self.size, self.size))
        j = np.random.randint(len(self.paths))
        desired = self.aus[j] + np.random.uniform(-0.1, 0.1, self.aus[j].shape)
        return self.tf(img), torch.from_numpy(self.aus[i]), torch.from_numpy(desired).float()


def official_step(G, D, opt_g, opt_d, real, real_cond, desired, train_generator: bool) -> None:
    """``GANimation.optimize_parameters`` of the official code, ported line by line."""
    b = real.shape[0]
    # _forward_D: the generator runs with its graph although only its output is used.
    color, mask = G(real, desired)[1:]
    fake = mask * real + (1 - mask) * color
    d_real, d_real_cond = D(real)
    loss_d = -d_real.mean() + F.mse_loss(d_real_cond, real_cond) / b * 4000
    d_fake, _ = D(fake.detach())
    loss_d = loss_d + d_fake.mean()
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    # _gradinet_penalty_D: a second critic step.
    alpha = torch.rand(b, 1, 1, 1, device=real.device).expand_as(real)
    interp = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    prob, _ = D(interp)
    grad = torch.autograd.grad(prob, interp, torch.ones_like(prob), retain_graph=True,
                               create_graph=True, only_inputs=True)[0].view(b, -1)
    gp = ((grad.pow(2).sum(1).sqrt() - 1) ** 2).mean() * 10
    opt_d.zero_grad()
    gp.backward()
    opt_d.step()
    if train_generator:  # _forward_G recomputes the generator from scratch
        color, mask = G(real, desired)[1:]
        fake = mask * real + (1 - mask) * color
        d_prob, d_cond = D(fake)
        rec_color, rec_mask = G(fake, real_cond)[1:]
        rec = rec_mask * fake + (1 - rec_mask) * rec_color

        def smooth(m):
            return (m[:, :, :, :-1] - m[:, :, :, 1:]).abs().sum() + \
                (m[:, :, :-1, :] - m[:, :, 1:, :]).abs().sum()
        loss_g = (-d_prob.mean() + F.mse_loss(d_cond, desired) / b * 4000
                  + F.l1_loss(rec, real) * 10 + mask.mean() * 0.1 + rec_mask.mean() * 0.1
                  + smooth(mask) * 1e-5 + smooth(rec_mask) * 1e-5)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()


# ----------------------------------------------------------------------------- harness

def make_images(root: Path, n: int, size: int) -> Path:
    """``n`` random JPEG faces-to-be with random AUs (decode cost is what matters)."""
    rng = np.random.default_rng(0)
    w = DatasetWriter(root)
    for i in range(n):
        img = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC))
        w.write_sample(f"b{i:05d}", img, {"au17": rng.uniform(0, 5, 17).tolist(), "split": "train"})
    w.finalize({"generator": "bench/train_step.py"})
    return root


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(size: str, batch: int, data: Path, device: str, extra: list[str]):
    cfg = load_cfg(TrainConfig, None, SIZES[size] + [f"optim.batch_size={batch}",
                                                     f"run.device={device}"] + extra)
    cfg = with_sources(cfg, [f"bench:{data}"], None)
    mix = Mixture([load_source(s, "train") for s in cfg.data.sources], cfg.data)
    return cfg, mix


def time_ours(cfg: TrainConfig, mix: Mixture, nets: Nets, cache, device, step0: int
              ) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of one cycle."""
    cl = cfg.run.channels_last == "on" or (cfg.run.channels_last == "auto" and device.type == "cuda")
    it = batches(mix, seed=0, batch=cfg.optim.batch_size, size=cfg.model.image_size,
                 start=step0, stop=step0 + CYCLE, cache=cache)
    lam = cfg.loss.cond_weight(cfg.optim.batch_size)
    sync(device)
    t, c = time.perf_counter(), time.process_time()
    for batch in it:
        train_step(nets, cfg, batch, device, cl, lam)
    sync(device)
    return time.perf_counter() - t, time.process_time() - c


def time_baseline(G, D, opt_g, opt_d, loader_it, device) -> tuple[float, float]:
    sync(device)
    t, c = time.perf_counter(), time.process_time()
    for i in range(CYCLE):
        real, real_cond, desired = (x.to(device, non_blocking=True) for x in next(loader_it))
        official_step(G, D, opt_g, opt_d, real, real_cond, desired, (i + 1) % CYCLE == 0)
    sync(device)
    return time.perf_counter() - t, time.process_time() - c


def bench_size(size: str, batch: int, data: Path, device: torch.device, repeats: int,
               workers: int) -> dict:
    cfg, mix = build(size, batch, data, str(device), [])
    cfg_c, _ = build(size, batch, data, str(device), ["loss.gp_mode=combined"])
    cache = preload(mix, cfg.model.image_size, workers)
    cl = device.type == "cuda"
    ours = build_nets(cfg, device, cl)
    ours_c = build_nets(cfg_c, device, cl)
    torch.manual_seed(0)
    G, D = Generator(cfg.model).to(device), Critic(cfg.model).to(device)
    G.fast = D.fast = False  # the literal official forward of both networks
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.999))
    # Decoding in this process (workers=0) keeps all of the baseline's work inside the
    # CPU-time measurement; loading speed with workers is measured separately below.
    loader = torch.utils.data.DataLoader(OfficialDataset(mix, cfg.model.image_size), batch_size=batch,
                                         num_workers=0, drop_last=True,
                                         pin_memory=device.type == "cuda")
    loader_it = iter(loader)
    names = ("baseline", "ours", "ours_combined")
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
    for r in range(repeats + 1):  # trial 0 warms up (allocator, kernels)
        trial = {"baseline": time_baseline(G, D, opt_g, opt_d, loader_it, device),
                 "ours": time_ours(cfg, mix, ours, cache, device, r * CYCLE),
                 "ours_combined": time_ours(cfg_c, mix, ours_c, cache, device, r * CYCLE)}
        if r:
            for k in names:
                times[k].append(trial[k])
        print(f"  {size} trial {r}{' (warm-up)' if not r else ''}: " + "  ".join(
            f"{k} {w:.2f}s (cpu {c:.2f}s)" for k, (w, c) in trial.items()), flush=True)
    res: dict = {}
    for k, v in times.items():
        wall, cpu = statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)
        res[k] = {"cycle_wall_s": [x[0] for x in v], "cycle_cpu_s": [x[1] for x in v],
                  "images_per_s": CYCLE * batch / wall, "images_per_cpu_s": CYCLE * batch / cpu}
    for k in ("ours", "ours_combined"):
        res[f"ratio_{k}_vs_baseline"] = res[k]["images_per_s"] / res["baseline"]["images_per_s"]
        res[f"ratio_{k}_vs_baseline_cpu"] = (res[k]["images_per_cpu_s"]
                                            / res["baseline"]["images_per_cpu_s"])
    res["loading_images_per_s"] = bench_loading(cfg, mix, cache, device, workers)
    res["batch"], res["image_size"] = batch, cfg.model.image_size
    return res


def bench_loading(cfg: TrainConfig, mix: Mixture, cache, device, workers: int, n: int = 20) -> dict:
    """Images/s of the data paths alone, on the training device."""
    b, size = cfg.optim.batch_size, cfg.model.image_size
    out = {}
    pool = torch.rand(len(mix), 3, size, size, device=device) * 2 - 1  # in-memory baseline
    t = time.perf_counter()
    for _ in range(n):
        x = pool[torch.randint(len(mix), (b,), device=device)]
    sync(device)
    out["in_memory_baseline"] = n * b / (time.perf_counter() - t)
    for name, kw in (("ours_memory", {"cache": cache}), ("ours_stream", {"workers": workers})):
        it = batches(mix, seed=0, batch=b, size=size, start=0, stop=n + 2, **kw)
        next(it), next(it)  # start-up (worker launch) is not throughput
        t = time.perf_counter()
        for batch in it:
            x = to_device(batch.images, device, False)
        sync(device)
        out[name] = n * b / (time.perf_counter() - t)
    loader = iter(torch.utils.data.DataLoader(OfficialDataset(mix, size), batch_size=b,
                                              num_workers=workers, drop_last=True))
    next(loader), next(loader)
    t = time.perf_counter()
    for _ in range(n):
        x = next(loader)[0].to(device)
    sync(device)
    out["official_dataloader"] = n * b / (time.perf_counter() - t)
    del x
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="small,official")
    ap.add_argument("--batch-official", type=int, default=None, help="default: 8 on CPU, 25 on GPU")
    ap.add_argument("--batch-small", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=None, help="timed cycles per method "
                    "(default: 5 small, 2 official)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch default)")
    ap.add_argument("--workers", type=int, default=2, help="data workers (both paths)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_step.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    results = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "load_avg_start": os.getloadavg(), "sizes": {}}
    if device.type == "cuda":
        results["gpu"] = torch.cuda.get_device_name(device)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            px = 128 if size == "official" else 64
            data = make_images(Path(tmp) / size, 256, 128)
            batch = args.batch_small if size == "small" else (
                args.batch_official or (25 if device.type == "cuda" else 8))
            reps = args.repeats or (5 if size == "small" else 2)
            print(f"{size}: {px} px, batch {batch}, {reps} timed cycles of {CYCLE}:1 on {device}", flush=True)
            results["sizes"][size] = bench_size(size, batch, data, device, reps, args.workers)
    results["load_avg_end"] = os.getloadavg()
    print(f"\n{'size':<9} {'baseline img/s':>15} {'ours img/s':>11} {'ratio':>6} {'(cpu)':>6} "
          f"{'combined img/s':>15} {'ratio':>6} {'(cpu)':>6}   loading img/s (memory / stream / "
          "official / in-memory baseline)")
    for size, r in results["sizes"].items():
        ld = r["loading_images_per_s"]
        print(f"{size:<9} {r['baseline']['images_per_s']:>15.2f} {r['ours']['images_per_s']:>11.2f} "
              f"{r['ratio_ours_vs_baseline']:>6.2f} {r['ratio_ours_vs_baseline_cpu']:>6.2f} "
              f"{r['ours_combined']['images_per_s']:>15.2f} "
              f"{r['ratio_ours_combined_vs_baseline']:>6.2f} "
              f"{r['ratio_ours_combined_vs_baseline_cpu']:>6.2f}   {ld['ours_memory']:.0f} / "
              f"{ld['ours_stream']:.0f} / {ld['official_dataloader']:.0f} / {ld['in_memory_baseline']:.0f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
