"""The training step: loss signs, gradient penalty, n_critic isolation, joint == separate updates."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from infgan.data import build_dataset
from infgan.data.dataset import Batch, interpolation_coeffs, sample_batch
from infgan.train import losses
from infgan.train.state import init_state
from infgan.train.step import Players, _critic_terms, critic_step, generator_step, joint_step, train_step

from conftest import tiny

KINDS = ["wgan_clip", "wgan_gp", "gan"]


def setup(*sets):
    cfg = tiny(*sets)
    data = build_dataset(cfg.data, cfg.seed)
    state = init_state(cfg, data.channels, torch.device("cpu"))
    coeffs = data.coeffs()
    real = sample_batch(coeffs, cfg.train.batch_size, torch.Generator().manual_seed(5)).coeffs
    return cfg, data, state, coeffs, real


def params(m: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.parameters()]


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


class FixedPaths(nn.Module):
    """A 'generator' that always returns the same paths, so a critic step sees a known fake batch."""

    def __init__(self, paths):
        super().__init__()
        self.paths = paths

    def forward(self, ts, batch_size, rng):
        return self.paths


@pytest.mark.parametrize("kind", KINDS)
def test_critic_steps_raise_real_minus_fake_score(kind):
    cfg, data, state, coeffs, real = setup(f"loss.kind={kind}", "train.critic_optimizer=adam", "train.critic_lr=0.01")
    with torch.no_grad():
        fake_paths = state.generator(data.ts, real.size(0), torch.Generator().manual_seed(9))
    fake = interpolation_coeffs(fake_paths)
    players = Players(FixedPaths(fake_paths), state.critic)

    def gap():
        with torch.no_grad():
            return (state.critic(real).mean() - state.critic(fake).mean()).item()

    before = gap()
    for _ in range(5):
        critic_step(losses.build(cfg.loss), state, players, Batch(real), data.ts)
    assert gap() > before


def test_gradient_penalty_is_finite_and_nonzero():
    cfg, data, state, coeffs, real = setup("loss.kind=wgan_gp")
    with torch.no_grad():
        fake = interpolation_coeffs(state.generator(data.ts, real.size(0), torch.Generator().manual_seed(1)))
    terms = _critic_terms(losses.build(cfg.loss), state.critic, real, fake, torch.Generator().manual_seed(2), None)
    gp = terms["gp"]
    assert torch.isfinite(gp) and gp.item() > 0
    terms["critic_loss"].backward()
    grads = [p.grad for p in state.critic.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)  # every parameter gets a gradient


def test_gradient_penalty_is_taken_on_the_interpolates_alone():
    """The penalty equals E[(|grad D(x_hat)| - 1)^2] computed directly from the interpolates, one at a
    time: the real and fake rows the critic scores in the same pass do not dilute it."""
    cfg, data, state, coeffs, real = setup("loss.kind=wgan_gp")
    with torch.no_grad():
        fake = interpolation_coeffs(state.generator(data.ts, real.size(0), torch.Generator().manual_seed(1)))
    terms = _critic_terms(losses.build(cfg.loss), state.critic, real, fake, torch.Generator().manual_seed(2), None)
    eps = torch.rand(real.size(0), 1, 1, generator=torch.Generator().manual_seed(2))  # the same draw
    norms = []
    for i in range(real.size(0)):
        x_hat = (eps[i] * real[i : i + 1] + (1 - eps[i]) * fake[i : i + 1]).requires_grad_(True)
        (grad,) = torch.autograd.grad(state.critic(x_hat, adjoint=False).sum(), x_hat)
        norms.append(grad.norm())
    direct = ((torch.stack(norms) - 1) ** 2).mean()
    assert torch.allclose(terms["gp"], direct, rtol=1e-4, atol=1e-6)
    assert terms["gp"].item() < 2 / 3  # what the old, diluted penalty could never go below


@pytest.mark.parametrize("kind", KINDS)
def test_generator_step_leaves_critic_untouched_and_vice_versa(kind):
    cfg, data, state, coeffs, real = setup(f"loss.kind={kind}", "train.n_critic=3")
    players = Players(state.generator, state.critic)
    g0, d0 = params(state.generator), params(state.critic)
    loss = losses.build(cfg.loss)
    generator_step(loss, state, players, Batch(real), data.ts)
    assert same(params(state.critic), d0) and not same(params(state.generator), g0)
    assert all(p.grad is None for p in state.critic.parameters())  # no gradient leaks into the critic
    g1 = params(state.generator)
    critic_step(loss, state, players, Batch(real), data.ts)
    assert same(params(state.generator), g1) and not same(params(state.critic), d0)
    # The critic step zeroed the critic's gradients first: what it applied came from this batch only.
    state.critic_opt.zero_grad(set_to_none=True)


def test_critic_steps_draw_fresh_fake_batches():
    cfg, data, state, coeffs, real = setup("train.n_critic=3")
    seen = []

    class Recorder(nn.Module):
        def forward(self, ts, batch_size, rng):
            out = state.generator(ts, batch_size, rng)
            seen.append(out.detach().clone())
            return out

    players = Players(Recorder(), state.critic)
    batches = iter([sample_batch(coeffs, 8, torch.Generator().manual_seed(i)) for i in range(3)])
    train_step(losses.build(cfg.loss), state, players, lambda: next(batches), data.ts, cfg.train.n_critic)
    assert len(seen) == 4  # 3 critic steps + 1 generator step
    assert all(not torch.equal(seen[i], seen[j]) for i in range(4) for j in range(i + 1, 4))


@pytest.mark.parametrize("kind, sig_weight", [(k, 0) for k in KINDS] + [("gan", 0.5), ("wgan_clip", 0.5)])
def test_joint_step_equals_separate_critic_and_generator_updates(kind, sig_weight):
    """The 1:1 simultaneous step updates each player exactly as its own step would, from the same noise
    (with a kernel term beside the critic too: it reaches the generator only)."""
    cfg, data, state, coeffs, real = setup(f"loss.kind={kind}", f"loss.sig_weight={sig_weight}")
    critic_only, generator_only = copy.deepcopy(state), copy.deepcopy(state)
    loss = losses.build(cfg.loss)
    joint_step(loss, state, Players(state.generator, state.critic), Batch(real), data.ts)
    critic_step(loss, critic_only, Players(critic_only.generator, critic_only.critic), Batch(real), data.ts)
    generator_step(loss, generator_only, Players(generator_only.generator, generator_only.critic), Batch(real), data.ts)
    for a, b in zip(params(state.critic), params(critic_only.critic)):
        assert torch.allclose(a, b, atol=1e-6)
    for a, b in zip(params(state.generator), params(generator_only.generator)):
        assert torch.allclose(a, b, atol=1e-5)


def _steps(cfg, n: int) -> tuple[list[dict], list[torch.Tensor]]:
    """`n` training steps of `cfg` from its initial state: each step's outputs and the generator's weights."""
    data = build_dataset(cfg.data, cfg.seed)
    state = init_state(cfg, data.channels, torch.device("cpu"))
    loss, players, coeffs = losses.build(cfg.loss), Players(state.generator, state.critic), data.coeffs()
    outs = []
    for _ in range(n):
        outs.append(train_step(loss, state, players, lambda: sample_batch(coeffs, 8, state.rng), data.ts))
        state.step += 1
    return outs, params(state.generator)


def test_the_critic_beside_fdm_at_weight_0_gives_fdms_exact_losses_and_steps():
    plain, plain_g = _steps(tiny("loss.kind=fdm", "loss.fdm_kernel=energy"), 4)
    beside, beside_g = _steps(tiny("loss.kind=fdm_gan", "loss.fdm_kernel=energy", "loss.critic_weight=0"), 4)
    assert [float(o["generator_loss"]) for o in plain] == [float(o["fdm"]) for o in beside]
    assert all(float(o["generator_loss"]) == 0 and "critic_loss" in o for o in beside)  # the critic trains
    assert same(plain_g, beside_g)
    _, weighted_g = _steps(tiny("loss.kind=fdm_gan", "loss.fdm_kernel=energy", "loss.critic_weight=0.5"), 4)
    assert not same(plain_g, weighted_g)  # the critic's term moves the generator
