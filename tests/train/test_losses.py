"""Losses match the official formulas; terms add up; the lambda_cond equivalence holds."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from train.config import LossConfig
from train.losses import critic_loss, generator_loss, gradient_penalty, total_variation


def test_critic_loss_terms_and_official_cond_weight():
    torch.manual_seed(0)
    b = 25
    d_real, d_fake = torch.randn(b, 1, 2, 2), torch.randn(b, 1, 2, 2)
    pred, au = torch.rand(b, 17), torch.rand(b, 17)
    w = LossConfig().cond_weight(b)
    total, terms = critic_loss(d_real, d_fake, pred, au, w)
    # The official code: MSELoss(pred, au) / B * 4000 at its batch of 25.
    official = F.mse_loss(pred, au) / b * 4000
    torch.testing.assert_close(terms["d_cond"], official)
    torch.testing.assert_close(terms["d_real"], -d_real.mean())
    torch.testing.assert_close(terms["d_fake"], d_fake.mean())
    torch.testing.assert_close(total.detach(), sum(terms.values()))


def test_official_cond_rule_at_any_batch():
    cfg = LossConfig(lambda_cond_official=4000.0)
    assert cfg.cond_weight(25) == 160.0 and cfg.cond_weight(8) == 500.0
    assert LossConfig().cond_weight(8) == 160.0  # per-element weight: batch-independent


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = sum(w * x) has gradient w everywhere: penalty = l * (|w| - 1)^2 exactly.
    w = torch.randn(1, 3, 4, 4)
    critic = lambda x: ((x * w).sum(dim=(1, 2, 3)), None)
    real, fake = torch.rand(5, 3, 4, 4), torch.rand(5, 3, 4, 4)
    gp, terms = gradient_penalty(critic, real, fake, torch.rand(5), 10.0)
    torch.testing.assert_close(gp, 10 * (w.norm() - 1) ** 2)
    assert set(terms) == {"d_gp"}


def test_gradient_penalty_interpolates_and_trains_only_the_critic():
    conv = torch.nn.Conv2d(3, 1, 3)
    seen = {}

    def critic(x):
        seen["x"] = x.detach().clone()
        return conv(x).pow(2), None

    real = torch.rand(2, 3, 5, 5)
    fake = torch.rand(2, 3, 5, 5, requires_grad=True)
    alpha = torch.tensor([0.0, 1.0])
    gp, _ = gradient_penalty(critic, real, fake, alpha, 10.0)
    torch.testing.assert_close(seen["x"][0], fake[0].detach())   # alpha 0 -> fake
    torch.testing.assert_close(seen["x"][1], real[1])            # alpha 1 -> real
    gp.backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0  # 2nd order
    assert fake.grad is None


def test_total_variation_is_summed():
    m = torch.zeros(2, 1, 3, 3)
    m[0, 0, 1, 1] = 1.0  # 4 unit jumps
    m[1, 0, :, 2] = 0.5  # 3 half jumps, horizontally
    assert total_variation(m).item() == 4 + 1.5


def test_generator_loss_terms():
    torch.manual_seed(1)
    b = 4
    real, cyc = torch.rand(b, 3, 8, 8), torch.rand(b, 3, 8, 8)
    a1, a2 = torch.rand(b, 1, 8, 8), torch.rand(b, 1, 8, 8)
    d_fake, pred, target = torch.randn(b, 1, 1, 1), torch.rand(b, 17), torch.rand(b, 17)
    total, t = generator_loss(d_fake, pred, target, cyc, real, a1, a2, lambda_cond=160.0,
                              lambda_cyc=10.0, lambda_mask=0.1, lambda_tv=1e-5)
    torch.testing.assert_close(t["g_fake"], -d_fake.mean())
    torch.testing.assert_close(t["g_cond"], 160 * ((pred - target) ** 2).mean())
    torch.testing.assert_close(t["g_cyc"], 10 * (cyc - real).abs().mean())
    torch.testing.assert_close(t["g_mask"], 0.1 * (a1.mean() + a2.mean()))
    torch.testing.assert_close(t["g_tv"], 1e-5 * (total_variation(a1) + total_variation(a2)))
    torch.testing.assert_close(total.detach(), sum(t.values()))
