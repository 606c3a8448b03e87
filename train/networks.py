"""GANimation's generator and critic, layer for layer as the official code builds them.

Official reference: ``networks/generator_wasserstein_gan.py`` and
``networks/discriminator_wasserstein_gan.py`` of albertpumarola/GANimation. Differences
are deliberate and behaviour-neutral: explicit output shapes instead of ``.squeeze()``
(which broke at batch 1), a named output tuple, InstanceNorm scales starting at 1
(today's PyTorch default; PyTorch 0.3 drew them from U(0, 1)), and a faster but
equivalent evaluation of the generator's first conv and heads (``Generator.fast``; the
parameters are the official ones, tests check outputs and gradients against the literal
forward).

Tensors: images ``(B, 3, S, S)`` in ``[-1, 1]``; AUs ``(B, n_aus)`` on the network's
0-1 scale (FACS / 5, see :func:`aukit.aus.to_unit`); attention ``(B, 1, S, S)`` in
``[0, 1]`` where 1 keeps the input pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
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
        # True: the same function with fewer FLOPs and faster kernels (see _input_conv and
        # _heads); False: the literal official forward, used as the benchmark baseline.
        self.fast = True
        init_weights(self)

    def forward(self, x: torch.Tensor, aus: torch.Tensor) -> GenOut:
        """``x`` (B, 3, S, S) in [-1, 1], ``aus`` (B, n_aus) on the 0-1 scale."""
        aus = aus.to(x.dtype)
        if self.fast:
            feats = self.main[1:](self._input_conv(x, aus))
            color, attn = self._heads(feats)
        else:  # tile the AU vector over every pixel and concatenate (official)
            b, _, h, w = x.shape
            cond = aus.view(b, -1, 1, 1).expand(b, aus.shape[1], h, w)
            feats = self.main(torch.cat([x, cond], dim=1))
            color, attn = self.color(feats), self.attention(feats)
        return GenOut(compose(x, color, attn), color, attn)

    def _input_conv(self, x: torch.Tensor, aus: torch.Tensor) -> torch.Tensor:
        """``conv(cat(x, tile(aus)))`` computed as ``conv(x) + sum_k aus_k * R_k``.

        A tiled AU channel is constant, so its convolution is the AU value times ``R_k``,
        the kernel's response to an all-ones image: the kernel sum inside, cut by the zero
        padding within 3 px of the border. ``R`` takes one 7x7 conv of a 7x7 ones image
        (whose rows/columns 0-2, 3 and 4-6 are the top border, interior and bottom border
        cases), expanded by indexing, instead of 17 full-resolution channels per sample:
        at 64 px, width 16, that is over a third of the generator's multiply-adds.
        """
        w_full = self.main[0].weight                   # (C, 3 + n, 7, 7)
        h, w = x.shape[-2:]
        fmt = _format_of(x)
        if min(h, w) < 7:  # the border cases overlap; tiny images take the literal path
            cond = aus.view(*aus.shape, 1, 1).expand(*aus.shape, h, w)
            return self.main[0](torch.cat([x, cond], dim=1))
        # Thin convs (3 inputs here, 4 outputs in the heads) run 2x faster channels-last.
        out = F.conv2d(x.contiguous(memory_format=torch.channels_last), w_full[:, :3], padding=3)
        return (out + self._au_response(w_full[:, 3:], aus, h, w)).contiguous(memory_format=fmt)

    @staticmethod
    def _au_response(w_au: torch.Tensor, aus: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """``sum_k aus_k * R_k`` as a ``(B, C, H, W)`` tensor (H, W >= 7)."""
        c, n = w_au.shape[:2]
        # Output channel k*C + j: kernel (j, k) applied to a 7x7 ones image = R_k[j] cases.
        small = F.conv2d(w_au.new_ones(1, 1, 7, 7), w_au.transpose(0, 1).reshape(n * c, 1, 7, 7),
                         padding=3).view(n, c * 49)
        mixed = (aus @ small).view(-1, c, 7, 7)                                  # (B, C, 7, 7)
        rows, cols = _border_index(h, aus.device), _border_index(w, aus.device)
        return mixed[:, :, rows][:, :, :, cols]

    def _heads(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Colour and attention heads as one 4-channel channels-last conv (2-5x faster)."""
        weight = torch.cat([self.color[0].weight, self.attention[0].weight])
        both = F.conv2d(feats.contiguous(memory_format=torch.channels_last), weight, padding=3)
        return torch.tanh(both[:, :3]), torch.sigmoid(both[:, 3:])


def _border_index(size: int, device: torch.device) -> torch.Tensor:
    """Map each of ``size`` output rows to its row in the 7-row response (size >= 7)."""
    idx = torch.full((size,), 3, dtype=torch.long, device=device)
    idx[:3] = torch.arange(3, device=device)
    idx[size - 3:] = torch.arange(4, 7, device=device)
    return idx


def _format_of(t: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if t.is_contiguous(memory_format=torch.channels_last) \
        and not t.is_contiguous() else torch.contiguous_format


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
        # True: on CPU, run the convs with tiny outputs as one matrix product (see
        # _gemm_conv); False: every layer through nn.Conv2d (the benchmark baseline).
        self.fast = True
        init_weights(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, 3, S, S) -> realism map ``(B, 1, S/2^L, S/2^L)``, AUs ``(B, n_aus)``."""
        h = x
        for layer in self.main:
            # Measured rule: weight-heavy (>= 256 inputs) layers on <= 4x4 maps.
            if self.fast and isinstance(layer, nn.Conv2d) and h.device.type == "cpu" \
                    and h.shape[-1] * h.shape[-2] <= 16 and h.shape[1] >= 256:
                h = _gemm_conv(h, layer.weight, layer.bias)
            else:
                h = layer(h)
        return self.realism(h), self.au(h).flatten(1)


def _gemm_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A 4x4, stride 2, padding 1 conv as ``unfold`` + one matrix product.

    The critic's last layers map <= 4x4 inputs through up to 1024x2048x4x4 weights; the
    CPU conv kernels handle those shapes at a fraction of GEMM speed (3-4x slower here,
    forward and backward), while unfold + addmm stays at BLAS speed. Same function, also
    under the double backward of the gradient penalty.
    """
    b, _, h, w = x.shape
    cols = F.unfold(x, 4, padding=1, stride=2)                     # (B, Cin*16, L)
    flat = cols.transpose(1, 2).reshape(b * (h // 2) * (w // 2), -1)
    w2 = weight.view(weight.shape[0], -1).t()
    out = torch.addmm(bias, flat, w2) if bias is not None else flat @ w2
    return out.view(b, h // 2, w // 2, -1).permute(0, 3, 1, 2)


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
