"""GANimation's losses, as the official ``models/ganimation.py`` computes them.

Each function is pure and returns ``(total, terms)``: ``total`` is the scalar to
differentiate, ``terms`` maps a log name to its *weighted* contribution (a detached
0-dim tensor), so that the terms of one loss sum to its total.

AU regression uses a per-element weight ``lambda_cond`` on the mean squared error over
``B x 17`` entries. The official code weighs ``MSE / B`` by 4000, i.e. a per-element
weight of ``4000 / B``; at its batch of 25 that is 160 (see ``LossConfig.cond_weight``).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Terms = dict[str, torch.Tensor]


def critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor, au_real_pred: torch.Tensor,
                au_real: torch.Tensor, lambda_cond: float) -> tuple[torch.Tensor, Terms]:
    """WGAN critic loss ``-D(real) + D(fake)`` plus AU regression on real images.

    ``d_real``/``d_fake``: realism patch maps (any shape, averaged); ``au_*``: ``(B, 17)``
    on the 0-1 scale.
    """
    real = -d_real.mean()
    fake = d_fake.mean()
    cond = lambda_cond * F.mse_loss(au_real_pred, au_real)
    return real + fake + cond, _detach({"d_real": real, "d_fake": fake, "d_cond": cond})


def gradient_penalty(critic: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
                     real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor,
                     lambda_gp: float) -> tuple[torch.Tensor, Terms]:
    """WGAN-GP: ``lambda_gp * mean((||grad_x D(x_hat)||_2 - 1)^2)`` per sample.

    ``x_hat = alpha * real + (1 - alpha) * fake`` with one ``alpha`` in [0, 1) per sample
    (shape ``(B,)``); ``fake`` is detached, so only the critic receives gradients.
    """
    a = alpha.to(real.dtype).view(-1, 1, 1, 1)
    x_hat = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    realism, _ = critic(x_hat)
    # Sum = backprop of ones, as the official grad_outputs=ones; create_graph for 2nd order.
    (grad,) = torch.autograd.grad(realism.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    gp = lambda_gp * (norm - 1).pow(2).mean()
    return gp, _detach({"d_gp": gp})


def total_variation(mask: torch.Tensor) -> torch.Tensor:
    """Anisotropic TV of ``(B, 1, H, W)``, *summed* over batch and pixels (official)."""
    return ((mask[:, :, :, :-1] - mask[:, :, :, 1:]).abs().sum()
            + (mask[:, :, :-1, :] - mask[:, :, 1:, :]).abs().sum())


def generator_loss(d_fake: torch.Tensor, au_fake_pred: torch.Tensor, target: torch.Tensor,
                   cycle: torch.Tensor, real: torch.Tensor, attn_fake: torch.Tensor,
                   attn_cycle: torch.Tensor, *, lambda_cond: float, lambda_cyc: float,
                   lambda_mask: float, lambda_tv: float) -> tuple[torch.Tensor, Terms]:
    """Generator loss of one step.

    ``-D(G(x|y_t))`` + AU regression of the critic on the fake against the target +
    L1 cycle ``G(G(x|y_t)|y_o)`` vs ``x`` + mean attention and its TV, for both passes.
    """
    adv = -d_fake.mean()
    cond = lambda_cond * F.mse_loss(au_fake_pred, target)
    cyc = lambda_cyc * F.l1_loss(cycle, real)
    mask = lambda_mask * (attn_fake.mean() + attn_cycle.mean())
    tv = lambda_tv * (total_variation(attn_fake) + total_variation(attn_cycle))
    total = adv + cond + cyc + mask + tv
    return total, _detach({"g_fake": adv, "g_cond": cond, "g_cyc": cyc, "g_mask": mask,
                           "g_tv": tv})


def _detach(terms: Terms) -> Terms:
    return {k: v.detach() for k, v in terms.items()}
