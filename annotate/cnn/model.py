"""The AU regressor network: a small residual CNN on grayscale face crops.

Input: float32 (B, 1, S, S) grayscale in [0, 1]. The network first normalises each image
(``input_norm``): ``global`` = zero mean, unit variance (:func:`standardise`: removes
brightness and contrast); ``local`` = local contrast normalisation (:func:`local_contrast`:
each pixel relative to a Gaussian neighbourhood of ``local_sigma`` x the side, which also
removes smooth shading: keeps edges and texture, the cues renders and photos share best).
Outputs (all per sample):

* ``aus``: (B, len(RIG_AUS)) FACS intensities in [0, 5] (``au_head``: ``5 * sigmoid``, or
  ``linear``: ``5 * logit``, unbounded while training, clamped to [0, 5] in eval mode): every AU the
  rig renders, so the network is also told about AUs outside the 17 GANimation ones (e.g.
  AU24 vs AU23) instead of folding them into look-alikes.
* ``visible``: (B,) logit of the face's unoccluded fraction (a confidence cue).
* ``pose``: (B, 3) yaw, pitch, roll / 45 deg (auxiliary task: makes pose explicit, so it is
  less likely to leak into AU estimates).

With ``regions`` the network reads each AU only where FACS says it shows: the upper-face
AUs (brows, lids, cheeks, nose: :data:`UPPER_AUS`) from the crop's top rows
(``[0, UPPER_END)``), the others from its bottom rows (``[LOWER_START, 1)``), through the
same backbone run twice. Why: rendered expressions co-occur in prototype patterns, and a
whole-face network learns them as shortcuts (an open mouth lowered its brow and lid AUs,
so real open-mouthed anger scored *below* neutral on AU04/AU07); with the mouth masked out the
same network ranked anger far better (docs/annotators.md).

Width and depth come from :class:`ModelConfig`; the preset is sized for CPU training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from aukit.aus import FACS_MAX, RIG_AUS
from aukit.config import check


AUHead = Literal["sigmoid", "linear"]
AU_HEADS: tuple[str, ...] = get_args(AUHead)


@dataclass(frozen=True)
class ModelConfig:
    """``widths``: channels of the 4 stride-2 stages after the stem; ``blocks``: residual
    blocks per stage; ``image_size``: input side (px); ``dropout`` before the heads."""

    image_size: int = 88
    stem: int = 24
    widths: tuple[int, ...] = (32, 64, 128, 192)
    blocks: tuple[int, ...] = (1, 2, 2, 1)
    dropout: float = 0.2
    input_norm: Literal["global", "local"] = "global"
    local_sigma: float = 0.06
    regions: bool = False
    mixstyle: float = 0.0     # probability of MixStyle after the stem and each of the first two stages
    # "sigmoid": 5 * sigmoid(logit). "linear": 5 * logit, clamped to [0, 5] only in eval mode. Why offer
    # linear: most labels are 0, which pushes a sigmoid towards saturation, where its gradient vanishes.
    # Measured on the preset (docs/annotators.md "What the CNN learns on the renders themselves"): it
    # steepens the AUs the network already reads, but does not revive the ones it never learned.
    au_head: AUHead = "sigmoid"

    def __post_init__(self) -> None:
        check(32 <= self.image_size <= 256, f"model.image_size must be in [32, 256], got {self.image_size}")
        check(len(self.widths) == len(self.blocks) >= 1, "model.widths and model.blocks need equal, non-zero lengths")
        # >= 8: oneDNN's channels-last convolutions (used in training) crash ("double free")
        # on 4-channel layers in torch 2.x on this CPU
        check(all(w >= 8 for w in self.widths) and self.stem >= 8, "model.stem and model.widths must be >= 8")
        check(all(b >= 1 for b in self.blocks), "model.blocks must be >= 1 each")
        check(0.0 <= self.dropout < 1.0, f"model.dropout must be in [0, 1), got {self.dropout}")
        check(0.01 <= self.local_sigma <= 0.5, f"model.local_sigma must be in [0.01, 0.5], got {self.local_sigma}")
        check(0.0 <= self.mixstyle <= 1.0, f"model.mixstyle must be in [0, 1], got {self.mixstyle}")
        check(self.au_head in AU_HEADS, f"model.au_head must be one of {AU_HEADS}, got {self.au_head!r}")


#: AUs read from the upper face when ``ModelConfig.regions`` (the rest from the lower face).
UPPER_AUS: tuple[str, ...] = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU43", "AU45")
#: Region bounds as fractions of the crop side (the shared crop rule puts the eyes at ~0.28,
#: the nose tip at ~0.56 and the mouth at ~0.71 of the side in 90% of real photos).
UPPER_END, LOWER_START = 0.60, 0.50


class Block(nn.Module):
    """Pre-activation-free basic residual block (conv-BN-ReLU-conv-BN + shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Identity() if stride == 1 and cin == cout else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class MixStyle(nn.Module):
    """MixStyle (Zhou et al., ICLR 2021), training only: with probability ``p`` per batch,
    each sample's per-channel feature mean and std are mixed with another sample's
    (weight ~ Beta(alpha, alpha)). Why: early-layer feature statistics carry image style
    (skin texture, shading, rendering), so mixing them makes the AU heads lean on shape
    instead; a domain-generalisation trick for the render-to-photo gap. No parameters."""

    def __init__(self, p: float, alpha: float = 0.1, eps: float = 1e-6):
        super().__init__()
        self.p, self.alpha, self.eps = p, alpha, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] < 2 or torch.rand(()) >= self.p:
            return x
        mu = x.mean(dim=(2, 3), keepdim=True)
        sig = (x.var(dim=(2, 3), keepdim=True) + self.eps).sqrt()
        mu, sig = mu.detach(), sig.detach()
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample((x.shape[0], 1, 1, 1)).to(x)
        perm = torch.randperm(x.shape[0], device=x.device)
        mix_mu = lam * mu + (1 - lam) * mu[perm]
        mix_sig = lam * sig + (1 - lam) * sig[perm]
        return (x - mu) / sig * mix_sig + mix_mu


class AUNet(nn.Module):
    """Grayscale crop -> rig AUs (0-5), visibility logit, pose (see module docstring)."""

    def __init__(self, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = [nn.Conv2d(1, cfg.stem, 3, 2, 1, bias=False), nn.BatchNorm2d(cfg.stem),
                                   nn.ReLU(inplace=True)]
        cin = cfg.stem
        for stage, (width, n) in enumerate(zip(cfg.widths, cfg.blocks)):
            if cfg.mixstyle and stage <= 2:
                layers.append(MixStyle(cfg.mixstyle))
            for k in range(n):
                layers.append(Block(cin, width, 2 if k == 0 else 1))
                cin = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(cfg.dropout)
        n = len(RIG_AUS)
        if cfg.regions:
            up = [RIG_AUS.index(a) for a in UPPER_AUS]
            self.register_buffer("up_idx", torch.tensor(up), persistent=False)
            self.register_buffer("lo_idx", torch.tensor([k for k in range(n) if k not in up]), persistent=False)
            self.head_up = nn.Linear(cin, len(up))
            self.head_lo = nn.Linear(cin, n - len(up))
            self.head_aux = nn.Linear(2 * cin, 1 + 3)
        else:
            self.head = nn.Linear(cin, n + 1 + 3)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.input_norm == "local":
            x = local_contrast(x, self.cfg.local_sigma * x.shape[-1])
        else:
            x = standardise(x)
        return self.drop(self.pool(self.features(x.contiguous(memory_format=torch.channels_last))).flatten(1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x``: (B, 1, S, S) grayscale in [0, 1] -> dict of outputs (see module docstring)."""
        n = len(RIG_AUS)
        if not self.cfg.regions:
            out = self.head(self._embed(x))
            return {"aus": self._aus(out[:, :n]), "visible": out[:, n],
                    "pose": out[:, n + 1:n + 4]}
        side = x.shape[-2]
        h_up = self._embed(x[..., :round(UPPER_END * side), :])
        h_lo = self._embed(x[..., round(LOWER_START * side):, :])
        logits = x.new_zeros((x.shape[0], n))
        logits = logits.index_copy(1, self.up_idx, self.head_up(h_up)).index_copy(1, self.lo_idx, self.head_lo(h_lo))
        aux = self.head_aux(torch.cat([h_up, h_lo], 1))
        return {"aus": self._aus(logits), "visible": aux[:, 0], "pose": aux[:, 1:4]}

    def _aus(self, logits: torch.Tensor) -> torch.Tensor:
        if self.cfg.au_head == "sigmoid":
            return FACS_MAX * torch.sigmoid(logits)
        aus = FACS_MAX * logits
        return aus if self.training else aus.clamp(0.0, FACS_MAX)


def standardise(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Per-image zero mean, unit variance of (B, 1, S, S) images (any value range)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True)
    return (x - mean) / (std + eps)


def local_contrast(x: torch.Tensor, sigma: float, eps: float = 0.02) -> torch.Tensor:
    """Local contrast normalisation of (B, 1, S, S): ``(x - G*x) / sqrt(G*(x - G*x)^2 + eps^2)``
    with a Gaussian ``G`` of ``sigma`` pixels (reflect padding); then a global rescale to
    unit variance so the network sees a stable range."""
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()

    def blur(v: torch.Tensor) -> torch.Tensor:
        v = F.pad(v, (radius, radius, radius, radius), mode="reflect")
        v = F.conv2d(v, k.view(1, 1, 1, -1))
        return F.conv2d(v, k.view(1, 1, -1, 1))

    hp = x - blur(x)
    y = hp / torch.sqrt(blur(hp * hp) + eps * eps)
    return standardise(y)


def to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 1, H, W) luma (ITU-R BT.601, what PIL's "L" uses)."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * w).sum(1, keepdim=True)
