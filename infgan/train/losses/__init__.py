"""Loss kinds: one class per kind, one registry entry each (`KINDS`), read by the config's choices,
the training step and the search spaces.

Two families share one interface (`infgan/train/losses/base.py`):

- adversarial kinds train a CDE critic beside the generator (`gan`, `wgan_clip`, `wgan_gp`, and
  `fdm_gan`: fdm's kernel score with a critic's term beside it);
  the critic gives *higher scores to real paths* and each player *minimises* its own loss;
- direct kinds train the generator alone on a scoring rule between its paths and each real batch
  (`sig_score`): no critic is built, stepped, checkpointed or wrapped.

Adding a kind: write its module (a subclass of `AdversarialLoss` or `DirectLoss`) and add one line
below. This module imports no torch, so the config can read the names cheaply; a kind's class is
imported when a run (or a check of whether it needs a critic) asks for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infgan.config import LossConfig
    from infgan.train.losses.base import Loss

# kind -> "module:class" (the default run's kind is `LossConfig.kind`'s default: fdm).
KINDS: dict[str, str] = {
    "gan": "infgan.train.losses.adversarial:NonSaturating",
    "wgan_clip": "infgan.train.losses.adversarial:WassersteinClip",
    "wgan_gp": "infgan.train.losses.adversarial:WassersteinGP",
    "sig_score": "infgan.train.losses.sig_score:SigScore",
    "fdm": "infgan.train.losses.fdm:FDM",
    "fdm_gan": "infgan.train.losses.fdm_gan:FDMBesideCritic",
}


def loss_class(kind: str) -> type[Loss]:
    """The class of loss `kind` (imports its module, and torch)."""
    if kind not in KINDS:
        raise ValueError(f"unknown loss kind {kind!r}; known: {', '.join(KINDS)}")
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def needs_critic(kind: str) -> bool:
    """Whether loss `kind` trains a CDE critic."""
    return loss_class(kind).critic


def build(cfg: LossConfig) -> Loss:
    """The loss object a run trains with."""
    return loss_class(cfg.kind)(cfg)
