"""The interface every loss kind implements, and what a step tells a loss about the other ranks.

An `AdversarialLoss` turns a CDE critic's scores into both players' losses; a `DirectLoss` scores
the generator's paths against a real batch with no critic. Either may add the signature-kernel
score to the generator's loss (`loss.sig_weight` for the adversarial kinds; the whole loss for
`sig_score`), through `SignatureScore` (`infgan/train/losses/sig_kernel.py`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from infgan.config import LossConfig
from infgan.data.dataset import Batch
from infgan.train.context import Shard
from infgan.train.losses.sig_kernel import SignatureScore


class Loss:
    """One loss kind; `critic` says whether it trains a CDE critic."""

    critic: ClassVar[bool]

    def __init__(self, cfg: LossConfig):
        self.cfg = cfg


class AdversarialLoss(Loss):
    """A loss between a critic and the generator, from the critic's per-path scores."""

    critic = True
    # Whether generator_loss == -critic_loss as far as the generator sees: then one backward pass
    # gives both players' gradients (negate the generator's).
    zero_sum: ClassVar[bool] = False
    # False: the critic backpropagates through its solver (a penalty's double backward does not go
    # through torchsde's adjoint).
    critic_adjoint: ClassVar[bool] = True

    def __init__(self, cfg: LossConfig):
        super().__init__(cfg)
        # Why a kernel term beside the critic: the score is a proper scoring rule that does not move
        # with the critic, so it keeps pulling the generator towards the data while the game
        # oscillates (`loss.sig_weight`; 0 leaves the loss as it was).
        self.kernel = SignatureScore(cfg) if cfg.sig_weight > 0 else None

    def generator_terms(
        self, fake: torch.Tensor, batch: Batch, shard: Shard, seed: int
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """Scores added to the generator's loss beside the critic's, by name: (weight, value), each
        value scaled as `DirectLoss.objective` scales it. Here the signature kernel score of `fake`
        at `loss.sig_weight`, when that is above 0."""
        if self.kernel is None:
            return {}
        return {"sig_score": (self.cfg.sig_weight, self.kernel(fake, batch, shard, seed))}

    def losses(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(critic_loss, generator_loss) from per-path scores (batch,), penalty excluded."""
        raise NotImplementedError

    def extra_inputs(self, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator) -> list[torch.Tensor]:
        """Further paths the critic scores in the same forward pass (a penalty's interpolates)."""
        return []

    def penalty(self, scores: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor | None:
        """A term added to the critic's loss from the scores of `extra_inputs`; None: no penalty."""
        return None

    def after_critic_step(self, critic: nn.Module) -> None:
        """What follows each optimiser step of the critic (careful clipping)."""


class DirectLoss(Loss):
    """A scoring rule between generated paths and a real batch: the generator's whole loss."""

    critic = False

    def objective(self, fake: torch.Tensor, batch: Batch, shard: Shard, seed: int) -> torch.Tensor:
        """This rank's share of the loss of `fake` (batch, time, 1 + channels) against `batch`, scaled
        so that the ranks' gradients averaged (as DDP does) are the gradient of the loss over the
        global batch; `seed` is the same on every rank."""
        raise NotImplementedError

    def per_path(self, sample: torch.Tensor, paths: torch.Tensor) -> torch.Tensor:
        """The score (n,) of each gap-free path (n, time, 1 + channels) against the generated `sample`
        (low: typical of the generator's law), for `infgan score` of a run without a critic."""
        raise NotImplementedError
