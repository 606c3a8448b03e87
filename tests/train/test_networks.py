"""The networks equal the official GANimation architecture (counts, layers, init, outputs)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from train.networks import Critic, Generator, ModelConfig, compose, count_parameters
from aukit.config import ConfigError


def expected_generator_params(c: int, res: int, n_aus: int) -> int:
    """Closed form from the issue's layer list (conv weights + IN scale/shift)."""
    conv = lambda cin, cout, k: cin * cout * k * k
    n = conv(3 + n_aus, c, 7) + 2 * c
    n += conv(c, 2 * c, 4) + 4 * c + conv(2 * c, 4 * c, 4) + 8 * c
    n += res * (2 * conv(4 * c, 4 * c, 3) + 4 * 4 * c)
    n += conv(4 * c, 2 * c, 4) + 4 * c + conv(2 * c, c, 4) + 2 * c
    return n + conv(c, 3, 7) + conv(c, 1, 7)


def expected_critic_params(c: int, layers: int, size: int, n_aus: int) -> int:
    n, cin, cout = 0, 3, c
    for _ in range(layers):
        n += cin * cout * 16 + cout
        cin, cout = cout, cout * 2
    k = size // 2 ** layers
    return n + cin * 9 + cin * n_aus * k * k


def test_official_parameter_counts():
    cfg = ModelConfig()  # defaults are the official ones
    gen, critic = Generator(cfg), Critic(cfg)
    assert count_parameters(gen) == 8_471_296 == expected_generator_params(64, 6, 17)
    assert count_parameters(critic) == 44_860_352 == expected_critic_params(64, 6, 128, 17)


@pytest.mark.parametrize("c,res,size,layers", [(8, 1, 32, 5), (16, 2, 64, 6), (12, 3, 64, 4)])
def test_parameter_counts_follow_config(c, res, size, layers):
    cfg = ModelConfig(image_size=size, g_conv_dim=c, g_res_blocks=res, d_conv_dim=c, d_layers=layers)
    assert count_parameters(Generator(cfg)) == expected_generator_params(c, res, 17)
    assert count_parameters(Critic(cfg)) == expected_critic_params(c, layers, size, 17)


def test_generator_layers_match_official():
    gen = Generator(ModelConfig(image_size=32, g_conv_dim=8, g_res_blocks=2, d_layers=5))
    convs = [m for m in gen.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert all(m.bias is None for m in convs), "the generator has no conv biases"
    shape = [(type(m).__name__, m.kernel_size[0], m.stride[0], m.in_channels, m.out_channels)
             for m in convs]
    assert shape[:3] == [("Conv2d", 7, 1, 20, 8), ("Conv2d", 4, 2, 8, 16), ("Conv2d", 4, 2, 16, 32)]
    assert shape[3:7] == [("Conv2d", 3, 1, 32, 32)] * 4
    assert shape[7:9] == [("ConvTranspose2d", 4, 2, 32, 16), ("ConvTranspose2d", 4, 2, 16, 8)]
    assert shape[9:] == [("Conv2d", 7, 1, 8, 3), ("Conv2d", 7, 1, 8, 1)]
    norms = [m for m in gen.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 + 2 * 2 + 2 and all(m.affine for m in norms)
    assert isinstance(gen.color[1], nn.Tanh) and isinstance(gen.attention[1], nn.Sigmoid)


def test_critic_layers_match_official():
    critic = Critic(ModelConfig())
    convs = [m for m in critic.main if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 128, 256, 512, 1024, 2048]
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) and m.bias is not None for m in convs)
    acts = [m for m in critic.main if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 6 and all(a.negative_slope == 0.01 for a in acts)
    assert not any(isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) for m in critic.modules())
    assert critic.realism.kernel_size == (3, 3) and critic.realism.bias is None
    assert critic.au.kernel_size == (2, 2) and critic.au.bias is None  # 128 / 64


def test_init_is_normal_002():
    torch.manual_seed(0)
    gen = Generator(ModelConfig())
    w = gen.main[0].weight
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001
    critic = Critic(ModelConfig(image_size=64, d_conv_dim=8))
    assert all((m.bias == 0).all() for m in critic.main if isinstance(m, nn.Conv2d))


def test_shapes_ranges_and_batch_of_one():
    cfg = ModelConfig(image_size=32, g_conv_dim=8, g_res_blocks=1, d_conv_dim=8, d_layers=5)
    gen, critic = Generator(cfg), Critic(cfg)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    out = gen(x, torch.rand(1, 17))
    assert out.image.shape == out.color.shape == (1, 3, 32, 32)
    assert out.attention.shape == (1, 1, 32, 32)
    assert out.attention.min() >= 0 and out.attention.max() <= 1
    assert out.color.abs().max() <= 1
    torch.testing.assert_close(out.image, compose(x, out.color, out.attention))
    realism, aus = critic(x)
    assert realism.shape == (1, 1, 1, 1) and aus.shape == (1, 17)


def test_output_depends_on_aus():
    cfg = ModelConfig(image_size=32, g_conv_dim=8, g_res_blocks=1, d_layers=5)
    gen = Generator(cfg)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    a, b = gen(x, torch.zeros(2, 17)), gen(x, torch.ones(2, 17))
    assert (a.image - b.image).abs().max() > 1e-4


def test_compose_attention_one_keeps_input():
    x, c = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(compose(x, c, torch.ones(2, 1, 4, 4)), x)
    torch.testing.assert_close(compose(x, c, torch.zeros(2, 1, 4, 4)), c)


def test_bad_image_size_rejected():
    with pytest.raises(ConfigError, match="multiple of"):
        ModelConfig(image_size=48)  # not a multiple of 2**6


@pytest.mark.parametrize("channels_last", [False, True])
def test_fast_forward_equals_official_forward(channels_last):
    """The fast stem and fused heads compute the official function and gradients."""
    torch.manual_seed(0)
    gen = Generator(ModelConfig(image_size=32, g_conv_dim=8, g_res_blocks=1, d_layers=5))
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    if channels_last:
        gen = gen.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    aus = torch.rand(3, 17)
    results = []
    for fast in (False, True):
        gen.fast = fast
        gen.zero_grad()
        x.grad = None
        out = gen(x, aus)
        (out.image * torch.linspace(0, 1, 32)).sum().backward()
        grads = [p.grad.clone() for p in gen.parameters()]
        results.append((out.image.detach(), out.attention.detach(), x.grad.clone(), *grads))
    for a, b in zip(*results):  # float32 sums in another order: compare to the scale
        assert (a - b).abs().max() <= 1e-5 * b.abs().max(), (a - b).abs().max() / b.abs().max()


def test_fast_critic_equals_plain_convs_including_gradient_penalty():
    """The GEMM path for tiny feature maps gives the same outputs, grads and 2nd-order grads."""
    from train.losses import gradient_penalty
    torch.manual_seed(0)
    critic = Critic(ModelConfig(image_size=64, d_conv_dim=16))  # last layer: 256 ch on 2x2
    real, fake = torch.rand(3, 3, 64, 64) * 2 - 1, torch.rand(3, 3, 64, 64) * 2 - 1
    alpha = torch.rand(3)
    results = []
    for fast in (False, True):
        critic.fast = fast
        critic.zero_grad()
        realism, aus = critic(real)
        gp, _ = gradient_penalty(critic, real, fake, alpha, 10.0)
        (realism.mean() + aus.square().mean() + gp).backward()
        results.append((realism.detach(), aus.detach(), gp.detach(),
                        *[p.grad.clone() for p in critic.parameters()]))
    for a, b in zip(*results):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max() + 1e-12
