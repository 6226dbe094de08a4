"""Loss kinds: one class per kind, one registry entry each (`KINDS`), read by the config's choices,
the training step and the search spaces.

Two families share one interface (`infgan/train/losses/base.py`):

- adversarial kinds train a CDE critic beside the generator (`gan`, `wgan_clip`, `wgan_gp`, and
  `fdm_gan`: fdm's kernel score with a critic's term beside it);
  the critic gives *higher scores to real paths* and each player *minimises* its own loss;
- direct kinds train the generator alone on a scoring rule between its paths and each real batch
  (`sig_score`): no critic is built, stepped, checkpointed or wrapped.

Adding a kind: write its module (a subclass of `AdversarialLoss` or `DirectLoss`) and add its line
to `LOSS_KINDS` (`infgan/config/kinds.py`, the table the config reads without importing training
code). A kind's class is imported when a run asks for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from infgan.config.kinds import LOSS_KINDS, needs_critic

if TYPE_CHECKING:
    from infgan.config import LossConfig
    from infgan.train.losses.base import Loss

__all__ = ["LOSS_KINDS", "build", "loss_class", "needs_critic"]


def loss_class(kind: str) -> type[Loss]:
    """The class of loss `kind` (imports its module, and torch)."""
    if kind not in LOSS_KINDS:
        raise ValueError(f"unknown loss kind {kind!r}; known: {', '.join(LOSS_KINDS)}")
    module, name = LOSS_KINDS[kind].target.split(":")
    return getattr(importlib.import_module(module), name)


def build(cfg: LossConfig) -> Loss:
    """The loss object a run trains with."""
    return loss_class(cfg.kind)(cfg)
