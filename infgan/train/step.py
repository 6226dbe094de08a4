"""The one training step every path runs (plain process, Tune trial, Ray Train worker, W&B agent).

No I/O here: a step takes the state, draws what it needs from the state's RNG and returns
detached diagnostics. `players` lets a caller pass DDP-wrapped models; the state holds the
plain ones. What differs between loss kinds is the loss object's (`infgan/train/losses/`): the step
reads the same for every kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from infgan.data.dataset import Batch, interpolation_coeffs
from infgan.train.context import Shard
from infgan.train.losses.base import AdversarialLoss, DirectLoss, Loss
from infgan.train.state import TrainState, rank_seed


@dataclass
class Players:
    """The modules a step calls: possibly DDP-wrapped versions of the state's models (no critic for
    a loss kind without one), and this rank's place in the global batch."""

    generator: nn.Module
    critic: nn.Module | None
    shard: Shard = field(default_factory=Shard)


def _fake(players: Players, ts: torch.Tensor, batch_size: int, rng: torch.Generator, batch: Batch) -> torch.Tensor:
    """Generated paths as interpolation coefficients (batch, time, 1 + data), under the batch's conditions."""
    if batch.cond is None:  # an unconditional generator takes no condition argument
        return interpolation_coeffs(players.generator(ts, batch_size, rng))
    return interpolation_coeffs(players.generator(ts, batch_size, rng, batch.cond))


def _shared_seed(state: TrainState) -> int:
    """A seed the same on every rank, new each step (a kernel's time points)."""
    return rank_seed(state.step, 0, "loss")


def _critic_terms(
    loss: AdversarialLoss,
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    rng: torch.Generator,
    cond: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """Scores of real and fake paths (and the penalty) from ONE critic forward pass."""
    # One forward over the concatenation, not one per input: cheaper, and under DDP each
    # module runs forward once per backward, as its gradient reducer expects.
    n = real.size(0)
    extra = loss.extra_inputs(real, fake, rng)
    parts = [real, fake, *extra]
    kwargs: dict[str, Any] = {} if cond is None else {"cond": torch.cat([cond] * len(parts))}
    if not loss.critic_adjoint:
        kwargs["adjoint"] = False
    scores = critic(torch.cat(parts), **kwargs)
    real_s, fake_s = scores[:n], scores[n : 2 * n]
    critic_loss, generator_loss = loss.losses(real_s, fake_s)
    gp = loss.penalty(scores[2 * n :], extra)
    if gp is None:
        gp = torch.zeros((), device=real.device)
    else:
        critic_loss = critic_loss + loss.cfg.gp_weight * gp
    return {
        "critic_loss": critic_loss,
        "generator_loss": generator_loss,
        "score_real": real_s.mean(),
        "score_fake": fake_s.mean(),
        "gp": gp,
    }


def _with_kernel(
    loss: AdversarialLoss, terms: dict[str, torch.Tensor], fake: torch.Tensor, batch: Batch, players: Players, seed: int
) -> torch.Tensor | None:
    """The scores added to the generator's loss beside the critic's, weighted and summed, each also
    recorded in `terms` by its name; None without any."""
    extra = None
    for name, (weight, value) in loss.generator_terms(fake, batch, players.shard, seed).items():
        terms[name] = value
        extra = weight * value if extra is None else extra + weight * value
    return extra


def _finish_critic(loss: AdversarialLoss, state: TrainState) -> None:
    """Step the critic's optimiser and do what follows it (clipping)."""
    assert state.critic_opt is not None and state.critic is not None
    state.critic_opt.step()
    loss.after_critic_step(state.critic)


def critic_step(
    loss: AdversarialLoss, state: TrainState, players: Players, batch: Batch, ts: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Update the critic only, against a fresh fake batch, from zeroed gradients."""
    assert state.critic_opt is not None and players.critic is not None
    with torch.no_grad():
        fake = _fake(players, ts, batch.coeffs.size(0), state.rng, batch)
    state.critic_opt.zero_grad(set_to_none=True)
    terms = _critic_terms(loss, players.critic, batch.coeffs, fake, state.rng, batch.cond)
    terms["critic_loss"].backward()
    _finish_critic(loss, state)
    return {k: v.detach() for k, v in terms.items()}


def generator_step(
    loss: AdversarialLoss, state: TrainState, players: Players, batch: Batch, ts: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Update the generator only (under the batch's conditions); no gradient reaches the critic's parameters."""
    assert state.critic is not None
    state.g_opt.zero_grad(set_to_none=True)
    fake = _fake(players, ts, batch.coeffs.size(0), state.rng, batch)
    # The plain critic, not a DDP wrapper: it takes no gradient here, so no reducer may wait.
    scores = state.critic(fake) if batch.cond is None else state.critic(fake, cond=batch.cond)
    _, generator_loss = loss.losses(scores, scores)
    terms = {"generator_loss": generator_loss}
    extra = _with_kernel(loss, terms, fake, batch, players, _shared_seed(state))
    total = generator_loss if extra is None else generator_loss + extra
    total.backward(inputs=list(state.generator.parameters()))
    state.g_opt.step()
    return {k: v.detach() for k, v in terms.items()}


def joint_step(
    loss: AdversarialLoss, state: TrainState, players: Players, batch: Batch, ts: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The reference's 1:1 simultaneous update: both players step from the same fake batch."""
    assert state.critic_opt is not None and state.critic is not None and players.critic is not None
    state.g_opt.zero_grad(set_to_none=True)
    state.critic_opt.zero_grad(set_to_none=True)
    fake = _fake(players, ts, batch.coeffs.size(0), state.rng, batch)
    terms = _critic_terms(loss, players.critic, batch.coeffs, fake, state.rng, batch.cond)
    extra = _with_kernel(loss, terms, fake, batch, players, _shared_seed(state))
    if loss.zero_sum:
        # For Wasserstein losses the generator's loss is minus the critic's (the penalty uses
        # detached fakes), so one backward pass gives both gradients: negate the generator's.
        # The kernel term does not reach the critic; subtracted here, it is added once negated.
        (terms["critic_loss"] if extra is None else terms["critic_loss"] - extra).backward()
        for p in state.generator.parameters():
            if p.grad is not None:
                p.grad.neg_()
    else:
        terms["critic_loss"].backward(inputs=list(state.critic.parameters()), retain_graph=True)
        total = terms["generator_loss"] if extra is None else terms["generator_loss"] + extra
        total.backward(inputs=list(state.generator.parameters()))
    state.g_opt.step()
    _finish_critic(loss, state)
    return {k: v.detach() for k, v in terms.items()}


def direct_step(
    loss: DirectLoss, state: TrainState, players: Players, batch: Batch, ts: torch.Tensor
) -> dict[str, torch.Tensor]:
    """A generator step on a scoring rule against the real batch: no critic."""
    state.g_opt.zero_grad(set_to_none=True)
    fake = _fake(players, ts, batch.coeffs.size(0), state.rng, batch)
    generator_loss = loss.objective(fake, batch, players.shard, _shared_seed(state))
    generator_loss.backward()
    state.g_opt.step()
    return {"generator_loss": generator_loss.detach()}


def train_step(
    loss: Loss,
    state: TrainState,
    players: Players,
    next_real: Callable[[], Batch],
    ts: torch.Tensor,
    n_critic: int = 1,
) -> dict[str, torch.Tensor]:
    """One generator step: direct for a loss without a critic; else joint when n_critic == 1, or
    n_critic critic steps then a generator step."""
    if isinstance(loss, DirectLoss):
        return direct_step(loss, state, players, next_real(), ts)
    assert isinstance(loss, AdversarialLoss)
    if n_critic == 1:
        return joint_step(loss, state, players, next_real(), ts)
    for _ in range(n_critic):
        # Each critic step: a fresh real batch, a fresh fake batch, zeroed gradients.
        batch = next_real()
        out = critic_step(loss, state, players, batch, ts)
    # The generator step takes the last real batch (its size, conditions and, for a kernel term, paths).
    out.update(generator_step(loss, state, players, batch, ts))
    return out
