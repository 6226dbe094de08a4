"""Models: shapes, time as channel 0, careful clipping, determinism of generated noise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from infgan.config import ModelConfig
from infgan.data.dataset import interpolation_coeffs
from infgan.models import Critic, Generator
from infgan.models.mlp import MLP

CFG = ModelConfig(initial_noise_size=3, noise_size=2, hidden_size=4, mlp_size=5, num_layers=2)


def test_generator_and_critic_shapes():
    torch.manual_seed(0)
    g, d = Generator(3, CFG), Critic(3, CFG)
    ts = torch.linspace(0, 9, 10)
    paths = g(ts, 6, torch.Generator().manual_seed(0))
    assert paths.shape == (6, 10, 4)
    assert torch.equal(paths[..., 0], ts.expand(6, 10))  # time is channel 0
    assert d(interpolation_coeffs(paths)).shape == (6,)
    assert d(interpolation_coeffs(paths), adjoint=False).shape == (6,)


def test_mlp_depth_and_final_tanh():
    m = MLP(2, 3, 5, num_layers=3, tanh=True)
    assert sum(isinstance(x, nn.Linear) for x in m) == 4 and isinstance(m[-1], nn.Tanh)
    assert m(torch.randn(7, 2) * 100).abs().max() <= 1


def test_same_noise_seed_same_paths_and_adjoint_matches_direct():
    torch.manual_seed(0)
    g = Generator(1, CFG)
    ts = torch.linspace(0, 7, 8)
    a = g(ts, 4, torch.Generator().manual_seed(3))
    b = g(ts, 4, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, g(ts, 4, torch.Generator().manual_seed(4)))
    direct = Generator(1, ModelConfig(**{**CFG.__dict__, "adjoint": False}))
    direct.load_state_dict(g.state_dict())
    assert torch.allclose(direct(ts, 4, torch.Generator().manual_seed(3)), a, atol=1e-6)


def test_clipping_bounds_every_linear_weight():
    d = Critic(2, CFG)
    with torch.no_grad():
        for p in d.parameters():
            p.mul_(50)
    d.clip_weights()
    linears = [m for m in d.modules() if isinstance(m, nn.Linear)]
    assert linears and all(m.weight.abs().max() <= 1 / m.out_features + 1e-7 for m in linears)
    assert any(m.weight.abs().max() == 1 / m.out_features for m in linears)  # clipping was active


def test_unit_time_feeds_the_vector_fields_time_over_the_last_time():
    # With unit_time, t enters the vector fields as t / t_last: the same as raw time with every
    # first layer's time weight divided by t_last.
    torch.manual_seed(0)
    ts = torch.linspace(0, 8, 9)
    raw_g, raw_d = Generator(1, CFG), Critic(1, CFG)
    unit = ModelConfig(**{**CFG.__dict__, "unit_time": True})
    unit_g, unit_d = Generator(1, unit), Critic(1, unit)
    unit_g.load_state_dict(raw_g.state_dict())
    unit_d.load_state_dict(raw_d.state_dict())
    a, b = raw_g(ts, 3, torch.Generator().manual_seed(1)), unit_g(ts, 3, torch.Generator().manual_seed(1))
    assert torch.equal(a[:, 0], b[:, 0]) and not torch.allclose(a, b)  # same grid, other paths
    coeffs = interpolation_coeffs(a)
    assert not torch.allclose(raw_d(coeffs), unit_d(coeffs))
    with torch.no_grad():
        for first in (raw_g.func.drift[0], raw_g.func.diffusion[0]):
            first.weight[:, 0] /= float(ts[-1])
        raw_d.func.mlp[0].weight[:, 0] /= float(coeffs.size(1) - 1)  # the critic's knots are 0 .. time - 1
    torch.testing.assert_close(raw_g(ts, 3, torch.Generator().manual_seed(1)), b)
    torch.testing.assert_close(raw_d(coeffs), unit_d(coeffs))


def test_observation_noise_adds_learned_white_noise_and_leaves_held_channels_exact():
    """model.obs_noise: each output value gets its own N(0, scale^2) noise, scale per channel starting at
    obs_noise and learned (it has a gradient); the paths without noise are those of the same weights with
    obs_noise 0; a held channel stays exactly 0, also after the weights' file is read back."""
    ts = torch.linspace(0, 7, 8)
    torch.manual_seed(0)
    noisy = Generator(3, ModelConfig(**{**CFG.__dict__, "adjoint": False, "obs_noise": 0.2}))
    plain = Generator(3, ModelConfig(**{**CFG.__dict__, "adjoint": False}))
    plain.load_state_dict(
        {k: v for k, v in noisy.state_dict().items() if k not in ("noise_scale", "keep", "noise_mix")}
    )
    a = noisy(ts, 4000, torch.Generator().manual_seed(3))
    b = plain(ts, 4000, torch.Generator().manual_seed(3))
    residual = a[..., 1:] - b[..., 1:]
    assert torch.equal(a[..., 0], b[..., 0])
    assert torch.allclose(residual.std(dim=(0, 1)), torch.full((3,), 0.2), rtol=0.05)
    r = residual.detach()
    assert abs(float((r[:, 1:] * r[:, :-1]).mean() / r.var())) < 0.05  # independent from one time to the next
    residual.pow(2).mean().backward()
    assert noisy.noise_scale.grad is not None and bool((noisy.noise_scale.grad > 0).all())

    noisy.hold(torch.tensor([False, True, False]))
    held = noisy(ts, 50, torch.Generator().manual_seed(1))
    assert torch.equal(held[..., 2], torch.zeros_like(held[..., 2])) and held[..., 1].std() > 0
    again = Generator(3, ModelConfig(**{**CFG.__dict__, "adjoint": False, "obs_noise": 0.2}))
    again.load_state_dict(noisy.state_dict())
    assert torch.equal(again(ts, 50, torch.Generator().manual_seed(1)), held)


def test_quiet_channels_get_no_observation_noise_also_after_the_weights_are_read_back():
    """model.obs_noise_channels: a channel left out gets exactly the paths of the same weights without
    noise, the others their noise; the weights' file keeps it; refused without observation noise; a
    name the data do not have is one line naming the channels."""
    from infgan.data.files import DataError
    from infgan.data.noise import quiet_channels

    ts = torch.linspace(0, 7, 8)
    noisy = Generator(3, ModelConfig(**{**CFG.__dict__, "adjoint": False, "obs_noise": 0.2}))
    plain = Generator(3, ModelConfig(**{**CFG.__dict__, "adjoint": False}))
    plain.load_state_dict(
        {k: v for k, v in noisy.state_dict().items() if k not in ("noise_scale", "keep", "noise_mix")}
    )
    quiet = quiet_channels(["a", "c"], ["a", "b", "c"], "test")
    assert quiet.tolist() == [False, True, False] and quiet_channels([], ["a"], "test") is None
    noisy.quiet(quiet)
    with torch.no_grad():
        r = noisy(ts, 2000, torch.Generator().manual_seed(3)) - plain(ts, 2000, torch.Generator().manual_seed(3))
    assert torch.equal(r[..., 2], torch.zeros_like(r[..., 2]))
    assert torch.allclose(r[..., [1, 3]].std(dim=(0, 1)), torch.full((2,), 0.2), rtol=0.05)
    again = Generator(3, ModelConfig(**{**CFG.__dict__, "adjoint": False, "obs_noise": 0.2}))
    again.load_state_dict(noisy.state_dict())
    assert torch.equal(again(ts, 50, torch.Generator().manual_seed(1)), noisy(ts, 50, torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="no observation noise"):
        plain.quiet(quiet)
    with pytest.raises(DataError, match="no channel 'd'; channels are a, b, c"):
        quiet_channels(["a", "d"], ["a", "b", "c"], "test")


def test_observation_noise_starts_at_each_channels_own_level():
    """`start_noise` (model.obs_noise_start: data): each channel's scale starts where it is told, a level
    of 0 at a small positive scale (the softplus never reaches 0); refused without observation noise."""
    noisy = Generator(3, ModelConfig(**{**CFG.__dict__, "adjoint": False, "obs_noise": 0.2}))
    noisy.start_noise(torch.tensor([0.9, 0.0, 0.3]))
    scale = torch.nn.functional.softplus(noisy.noise_scale.detach())
    assert torch.allclose(scale, torch.tensor([0.9, 1e-3, 0.3]), rtol=1e-4)
    ts = torch.linspace(0, 7, 8)
    noisy.start_noise(torch.tensor([1.0, 1.0, 0.0]), torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0, 0, 1.0]]))
    plain = Generator(3, ModelConfig(**{**CFG.__dict__, "adjoint": False}))
    plain.load_state_dict(
        {k: v for k, v in noisy.state_dict().items() if k not in ("noise_scale", "keep", "noise_mix")}
    )
    with torch.no_grad():
        r = (noisy(ts, 2000, torch.Generator().manual_seed(3)) - plain(ts, 2000, torch.Generator().manual_seed(3)))[
            ..., 1:
        ]
    assert torch.allclose(r.std(dim=(0, 1))[:2], torch.ones(2), rtol=0.05)
    assert float(torch.corrcoef(r[..., :2].reshape(-1, 2).T)[0, 1]) > 0.99  # two copies of one noise
    old = {k: v for k, v in noisy.state_dict().items() if k != "noise_mix"}  # saved before the mix existed
    noisy.load_state_dict(old)
    assert torch.equal(noisy.noise_mix, torch.eye(3))
    with pytest.raises(ValueError, match="no observation noise"):
        Generator(3, ModelConfig(**{**CFG.__dict__, "adjoint": False})).start_noise(torch.ones(3))
