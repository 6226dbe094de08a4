"""The one training step every path runs (plain process, Tune trial, Ray Train worker, W&B agent).

No I/O here: a step takes the state, draws what it needs from the state's RNG and returns
detached diagnostics. `players` lets a caller pass DDP-wrapped models; the state holds the
plain ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from infgan.config import Config
from infgan.data.dataset import interpolation_coeffs
from infgan.losses import ZERO_SUM, adversarial_losses, gradient_penalty, interpolate
from infgan.train.state import TrainState


@dataclass
class Players:
    """The modules a step calls: possibly DDP-wrapped versions of the state's models."""

    generator: nn.Module
    discriminator: nn.Module


# A training batch: real paths' interpolation coefficients and, for a conditional run, their
# condition vectors (the fakes of the step are generated under the same conditions).
Batch = tuple[torch.Tensor, torch.Tensor | None]


def _fake(
    players: Players, ts: torch.Tensor, batch_size: int, rng: torch.Generator, cond: torch.Tensor | None
) -> torch.Tensor:
    """Generated paths as interpolation coefficients (batch, time, 1 + data)."""
    if cond is None:  # the unconditional call, as before conditions existed
        return interpolation_coeffs(players.generator(ts, batch_size, rng))
    return interpolation_coeffs(players.generator(ts, batch_size, rng, cond))


def _critic_terms(
    cfg: Config,
    discriminator: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    rng: torch.Generator,
    cond: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """Scores of real and fake paths (and the gradient penalty) from ONE critic forward pass."""
    # One forward over the concatenation, not one per input: cheaper, and under DDP each
    # module runs forward once per backward, as its gradient reducer expects.
    kind, n = cfg.loss.kind, real.size(0)
    parts = [real, fake]
    if kind == "wgan_gp":
        parts.append(interpolate(real, fake, rng))
    inputs = torch.cat(parts)
    extra = {} if cond is None else {"cond": torch.cat([cond] * len(parts))}
    # Double backward (the penalty's gradient of a gradient) does not go through torchsde's
    # adjoint, so the critic backpropagates through its solver under wgan_gp.
    scores = discriminator(inputs, adjoint=False, **extra) if kind == "wgan_gp" else discriminator(inputs, **extra)
    real_s, fake_s = scores[:n], scores[n : 2 * n]
    critic_loss, generator_loss = adversarial_losses(kind, real_s, fake_s)
    gp = gradient_penalty(scores[2 * n :], inputs) if kind == "wgan_gp" else torch.zeros((), device=real.device)
    return {
        "critic_loss": critic_loss + cfg.loss.gp_weight * gp,
        "generator_loss": generator_loss,
        "score_real": real_s.mean(),
        "score_fake": fake_s.mean(),
        "gp": gp,
    }


def _finish_critic(cfg: Config, state: TrainState) -> None:
    """Step the critic's optimiser and, for wgan_clip, clip its weights."""
    state.d_opt.step()
    if cfg.loss.kind == "wgan_clip":
        state.discriminator.clip_weights()


def critic_step(
    cfg: Config, state: TrainState, players: Players, batch: Batch, ts: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Update the critic only, against a fresh fake batch, from zeroed gradients."""
    real, cond = batch
    with torch.no_grad():
        fake = _fake(players, ts, real.size(0), state.rng, cond)
    state.d_opt.zero_grad(set_to_none=True)
    terms = _critic_terms(cfg, players.discriminator, real, fake, state.rng, cond)
    terms["critic_loss"].backward()
    _finish_critic(cfg, state)
    return {k: v.detach() for k, v in terms.items()}


def generator_step(
    cfg: Config, state: TrainState, players: Players, batch_size: int, ts: torch.Tensor, cond: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """Update the generator only (under the conditions `cond`); no gradient reaches the critic's parameters."""
    state.g_opt.zero_grad(set_to_none=True)
    fake = _fake(players, ts, batch_size, state.rng, cond)
    # The plain critic, not a DDP wrapper: it takes no gradient here, so no reducer may wait.
    scores = state.discriminator(fake) if cond is None else state.discriminator(fake, cond=cond)
    _, generator_loss = adversarial_losses(cfg.loss.kind, scores, scores)
    generator_loss.backward(inputs=list(state.generator.parameters()))
    state.g_opt.step()
    return {"generator_loss": generator_loss.detach()}


def joint_step(
    cfg: Config, state: TrainState, players: Players, batch: Batch, ts: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The reference's 1:1 simultaneous update: both players step from the same fake batch."""
    real, cond = batch
    state.g_opt.zero_grad(set_to_none=True)
    state.d_opt.zero_grad(set_to_none=True)
    fake = _fake(players, ts, real.size(0), state.rng, cond)
    terms = _critic_terms(cfg, players.discriminator, real, fake, state.rng, cond)
    if cfg.loss.kind in ZERO_SUM:
        # For Wasserstein losses the generator's loss is minus the critic's (the penalty uses
        # detached fakes), so one backward pass gives both gradients: negate the generator's.
        terms["critic_loss"].backward()
        for p in state.generator.parameters():
            if p.grad is not None:
                p.grad.neg_()
    else:
        terms["critic_loss"].backward(inputs=list(state.discriminator.parameters()), retain_graph=True)
        terms["generator_loss"].backward(inputs=list(state.generator.parameters()))
    state.g_opt.step()
    _finish_critic(cfg, state)
    return {k: v.detach() for k, v in terms.items()}


def train_step(
    cfg: Config, state: TrainState, players: Players, next_real: Callable[[], Batch], ts: torch.Tensor
) -> dict[str, torch.Tensor]:
    """One generator step: joint when n_critic == 1, else n_critic critic steps then a generator step."""
    if cfg.train.n_critic == 1:
        return joint_step(cfg, state, players, next_real(), ts)
    for _ in range(cfg.train.n_critic):
        # Each critic step: a fresh real batch, a fresh fake batch, zeroed gradients.
        batch = next_real()
        out = critic_step(cfg, state, players, batch, ts)
    real, cond = batch  # the generator step takes the last real batch's size and conditions
    out.update(generator_step(cfg, state, players, real.size(0), ts, cond))
    return out
