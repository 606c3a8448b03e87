"""GANimation's generator and critic, layer for layer as the official code builds them.

Official reference: ``networks/generator_wasserstein_gan.py`` and
``networks/discriminator_wasserstein_gan.py`` of albertpumarola/GANimation. Differences
are deliberate and behaviour-neutral: explicit output shapes instead of ``.squeeze()``
(which broke at batch 1), a named output tuple, and InstanceNorm scales starting at 1
(today's PyTorch default; PyTorch 0.3 drew them from U(0, 1)).

Tensors: images ``(B, 3, S, S)`` in ``[-1, 1]``; AUs ``(B, n_aus)`` on the network's
0-1 scale (FACS / 5, see :func:`aukit.aus.to_unit`); attention ``(B, 1, S, S)`` in
``[0, 1]`` where 1 keeps the input pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from aukit.aus import GANIMATION_AUS
from aukit.config import check


@dataclass(frozen=True)
class ModelConfig:
    """Network shapes. The defaults are the official GANimation ones."""

    image_size: int = 128          # S, pixels; a multiple of 2**d_layers
    n_aus: int = len(GANIMATION_AUS)
    g_conv_dim: int = 64           # width of the generator's first layer
    g_res_blocks: int = 6          # residual blocks at the bottleneck
    d_conv_dim: int = 64           # width of the critic's first layer
    d_layers: int = 6              # stride-2 convs in the critic (official: 6)

    def __post_init__(self) -> None:
        check(self.n_aus >= 1, f"model.n_aus must be >= 1, got {self.n_aus}")
        for name in ("g_conv_dim", "d_conv_dim", "d_layers"):
            check(getattr(self, name) >= 1, f"model.{name} must be >= 1")
        check(self.g_res_blocks >= 0, "model.g_res_blocks must be >= 0")
        step = 2 ** self.d_layers
        check(self.image_size >= step and self.image_size % step == 0,
              f"model.image_size={self.image_size} must be a positive multiple of "
              f"2**d_layers={step} (the critic halves it d_layers times)")


class GenOut(NamedTuple):
    """Generator outputs, all ``(B, C, S, S)``: ``image = A * x + (1 - A) * color``."""

    image: torch.Tensor
    color: torch.Tensor
    attention: torch.Tensor


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True)


class ResidualBlock(nn.Module):
    """Conv3x3-IN-ReLU-Conv3x3-IN plus identity skip (channel count unchanged)."""

    def __init__(self, dim: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _norm(dim), nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _norm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class Generator(nn.Module):
    """Encoder/decoder with colour and attention heads, conditioned on tiled AUs."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.g_conv_dim
        layers: list[nn.Module] = [nn.Conv2d(3 + cfg.n_aus, d, 7, 1, 3, bias=False), _norm(d),
                                   nn.ReLU(inplace=True)]
        for _ in range(2):  # down-sampling
            layers += [nn.Conv2d(d, d * 2, 4, 2, 1, bias=False), _norm(d * 2), nn.ReLU(inplace=True)]
            d *= 2
        layers += [ResidualBlock(d) for _ in range(cfg.g_res_blocks)]
        for _ in range(2):  # up-sampling
            layers += [nn.ConvTranspose2d(d, d // 2, 4, 2, 1, bias=False), _norm(d // 2),
                       nn.ReLU(inplace=True)]
            d //= 2
        self.main = nn.Sequential(*layers)
        self.color = nn.Sequential(nn.Conv2d(d, 3, 7, 1, 3, bias=False), nn.Tanh())
        self.attention = nn.Sequential(nn.Conv2d(d, 1, 7, 1, 3, bias=False), nn.Sigmoid())
        init_weights(self)

    def forward(self, x: torch.Tensor, aus: torch.Tensor) -> GenOut:
        """``x`` (B, 3, S, S) in [-1, 1], ``aus`` (B, n_aus) on the 0-1 scale."""
        b, _, h, w = x.shape
        # Tile the AU vector over every pixel: the conditioning GANimation uses.
        cond = aus.to(x.dtype).view(b, -1, 1, 1).expand(b, aus.shape[1], h, w)
        feats = self.main(torch.cat([x, cond], dim=1))
        color, attn = self.color(feats), self.attention(feats)
        return GenOut(compose(x, color, attn), color, attn)


def compose(x: torch.Tensor, color: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """``A * x + (1 - A) * C``: attention 1 keeps the input pixel, 0 takes the colour."""
    return attention * x + (1 - attention) * color


class Critic(nn.Module):
    """PatchGAN critic with a realism map and an AU-regression head."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        c_in, c_out = 3, cfg.d_conv_dim
        for _ in range(cfg.d_layers):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.01, inplace=True)]
            c_in, c_out = c_out, c_out * 2
        self.main = nn.Sequential(*layers)
        self.realism = nn.Conv2d(c_in, 1, 3, 1, 1, bias=False)
        # The AU head's kernel covers the whole final feature map (2x2 at 128 px).
        self.au = nn.Conv2d(c_in, cfg.n_aus, cfg.image_size // 2 ** cfg.d_layers, bias=False)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, 3, S, S) -> realism map ``(B, 1, S/2^L, S/2^L)``, AUs ``(B, n_aus)``."""
        h = self.main(x)
        return self.realism(h), self.au(h).flatten(1)


@torch.no_grad()
def init_weights(module: nn.Module) -> None:
    """Official init: every (transposed) conv weight ~ N(0, 0.02), conv biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.weight.normal_(0.0, 0.02)
            if m.bias is not None:
                m.bias.zero_()


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
