"""`fdm_gan`: fdm's kernel score of pairs of times, with a CDE critic's adversarial term beside it.

A kernel at one width sees what lies within its reach: on stocks, fdm's paths have the right
marginals but open, high, low and close move together less tightly than in the data (their levels
correlate 0.97-0.98 in generated windows, 1.00 in real ones), and a classifier tells them apart
almost always. A critic learns whatever tells the two apart. Here the generator minimises

    fdm's score + loss.critic_weight * E[softplus(-D(fake))]   (the non-saturating GAN loss)

while the critic D trains on the GAN loss as in `gan`, each step beside the generator's (the
reference's simultaneous update; `train.n_critic` > 1 for several critic steps). At weight 0 the
generator's steps are exactly fdm's: the same paths, the same pairs of times, the same gradients
(the critic trains beside it and changes nothing the generator sees). The weight is searchable.
"""

from __future__ import annotations

import torch

from infgan.config import LossConfig
from infgan.data.dataset import Batch
from infgan.train.context import Shard
from infgan.train.losses.adversarial import NonSaturating
from infgan.train.losses.fdm import FDM


class FDMBesideCritic(NonSaturating):
    """fdm's score plus `critic_weight` times the non-saturating generator loss."""

    def __init__(self, cfg: LossConfig):
        super().__init__(cfg)
        self.fdm = FDM(cfg)

    def losses(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        critic, generator = super().losses(real_scores, fake_scores)
        return critic, self.cfg.critic_weight * generator

    def generator_terms(
        self, fake: torch.Tensor, batch: Batch, shard: Shard, seed: int
    ) -> dict[str, tuple[float, torch.Tensor]]:
        return {
            "fdm": (1.0, self.fdm.objective(fake, batch, shard, seed)),
            **super().generator_terms(fake, batch, shard, seed),
        }
