"""Batch augmentation on the CPU, in torch: renders made to look like real photo crops.

Input: uint8 (B, L, L) grayscale renders; output: float32 (B, 1, S, S) in [0, 1] before
standardisation, plus a ``flipped`` mask (B,) so labels that change sign under a mirror
(yaw, roll) can follow. Each step targets one difference between our renders and
``real_faces``-style crops (docs/annotators.md):

* affine jitter (zoom, shift, rotation, mirror): detector/crop noise; the rig's AUs are
  bilateral, so a mirror keeps the AU labels;
* low resolution (down- then up-sampling): photos of 40-190 px faces resized to the crop;
* gamma and a linear illumination ramp: exposure and side light on real faces;
* Gaussian noise: sensor noise and JPEG grain;
* edge-replicated border strips: ``aukit.crop`` pads crops that leave the photo that way,
  and tight photo crops (LFW-style) leave it often;
* cutout: occlusions the renderer does not model;
* random convolution (RandConv, Xu et al., ICLR 2021): a random linear filter mixed into
  the image changes local texture and edge polarity while keeping shapes, so the network
  cannot rely on the renders' particular skin shading.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from annotate.cnn.config import AugmentConfig


def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def affine(x: torch.Tensor, size: int, cfg: AugmentConfig, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random zoom/shift/rotation/mirror of (B, 1, L, L) to (B, 1, size, size)."""
    b = x.shape[0]
    scale = 1.0 / _uniform(g, b, *cfg.scale)                  # >1 zooms out in grid units
    ang = torch.deg2rad(_uniform(g, b, -cfg.rotate, cfg.rotate))
    flip = (torch.rand(b, generator=g) < 0.5) if cfg.flip else torch.zeros(b, dtype=torch.bool)
    sx = scale * torch.where(flip, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = sx * torch.cos(ang), -scale * torch.sin(ang)
    theta[:, 1, 0], theta[:, 1, 1] = sx * torch.sin(ang), scale * torch.cos(ang)
    theta[:, :, 2] = _uniform(g, 2 * b, -2 * cfg.shift, 2 * cfg.shift).view(b, 2)
    grid = F.affine_grid(theta, (b, 1, size, size), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False), flip


def lowres(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Down- then up-sample a random subset of the batch (one factor per call)."""
    pick = torch.rand(x.shape[0], generator=g) < cfg.p_lowres
    if not pick.any():
        return x
    size = x.shape[-1]
    small = max(8, int(round(size * float(_uniform(g, 1, *cfg.lowres)))))
    y = F.interpolate(x[pick], size=(small, small), mode="bilinear", antialias=True, align_corners=False)
    x = x.clone()
    x[pick] = F.interpolate(y, size=(size, size), mode="bilinear", align_corners=False)
    return x


def photometric(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Gamma, illumination ramp and noise on (B, 1, S, S) values in [0, 1]."""
    b, _, s, _ = x.shape
    gamma = torch.exp(_uniform(g, b, math.log(cfg.gamma[0]), math.log(cfg.gamma[1]))).view(b, 1, 1, 1)
    x = x.clamp(1e-4, 1.0) ** gamma
    coords = torch.linspace(-0.5, 0.5, s)
    ramp = _uniform(g, 2 * b, -cfg.ramp, cfg.ramp).view(b, 2, 1, 1)
    x = x * (1.0 + ramp[:, :1] * coords.view(1, 1, 1, s) + ramp[:, 1:] * coords.view(1, 1, s, 1))
    sigma = _uniform(g, b, *cfg.noise) * (torch.rand(b, generator=g) < cfg.p_noise)
    x = x + sigma.view(b, 1, 1, 1) * torch.randn(x.shape, generator=g)
    return x.clamp(0.0, 1.0)


def border(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Replace a strip along one random side by copies of its inner edge row/column."""
    s = x.shape[-1]
    x = x.clone()
    for i in torch.nonzero(torch.rand(x.shape[0], generator=g) < cfg.p_border).flatten().tolist():
        w = max(1, int(s * float(_uniform(g, 1, *cfg.border))))
        side = int(torch.randint(4, (1,), generator=g))
        if side == 0:
            x[i, :, :w, :] = x[i, :, w:w + 1, :]
        elif side == 1:
            x[i, :, s - w:, :] = x[i, :, s - w - 1:s - w, :]
        elif side == 2:
            x[i, :, :, :w] = x[i, :, :, w:w + 1]
        else:
            x[i, :, :, s - w:] = x[i, :, :, s - w - 1:s - w]
    return x


def cutout(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Fill one random rectangle per chosen image with a random grey level."""
    s = x.shape[-1]
    x = x.clone()
    for i in torch.nonzero(torch.rand(x.shape[0], generator=g) < cfg.p_cutout).flatten().tolist():
        h, w = (max(1, int(s * float(_uniform(g, 1, *cfg.cutout)))) for _ in range(2))
        y0, x0 = int(torch.randint(s - h + 1, (1,), generator=g)), int(torch.randint(s - w + 1, (1,), generator=g))
        x[i, :, y0:y0 + h, x0:x0 + w] = float(torch.rand(1, generator=g))
    return x


def randconv(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Mix a random-filter response into a random subset of (B, 1, S, S), rescaled to [0, 1]."""
    pick = torch.nonzero(torch.rand(x.shape[0], generator=g) < cfg.p_randconv).flatten()
    if len(pick) == 0:
        return x
    k = cfg.randconv_sizes[int(torch.randint(len(cfg.randconv_sizes), (1,), generator=g))]
    weight = torch.randn((len(pick), 1, k, k), generator=g) / k
    sub = x[pick]
    padded = F.pad(sub, (k // 2,) * 4, mode="reflect") if k > 1 else sub
    y = F.conv2d(padded.transpose(0, 1), weight, groups=len(pick)).transpose(0, 1)   # one filter per image
    lo = y.amin(dim=(2, 3), keepdim=True)
    y = (y - lo) / (y.amax(dim=(2, 3), keepdim=True) - lo).clamp_min(1e-6)
    alpha = torch.rand((len(pick), 1, 1, 1), generator=g)
    x = x.clone()
    x[pick] = alpha * sub + (1 - alpha) * y
    return x


def augment(images: torch.Tensor, size: int, cfg: AugmentConfig,
            g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (B, L, L) -> float (B, 1, size, size) in [0, 1], and the mirror mask (B,)."""
    x = images.unsqueeze(1).float() / 255.0
    x, flipped = affine(x, size, cfg, g)
    x = lowres(x, cfg, g)
    x = photometric(x, cfg, g)
    x = border(x, cfg, g)
    x = randconv(x, cfg, g)
    return cutout(x, cfg, g), flipped


def center(images: torch.Tensor, size: int) -> torch.Tensor:
    """Evaluation view: uint8 (B, L, L) -> float (B, 1, size, size), resized, no jitter."""
    x = images.unsqueeze(1).float() / 255.0
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
