"""The loss kinds as data: each kind's class (imported only when a run builds one) and whether it
trains a CDE critic. The config offers the names as `loss.kind`'s choices and refuses critic
settings for a kind without a critic by reading this table, without importing training code;
`infgan/train/losses/__init__.py` builds the classes from it.

Adding a kind: its module under `infgan/train/losses/` and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LossKind:
    """Where a kind's class lives ("module:Class") and whether it trains a critic."""

    target: str
    critic: bool


# kind -> its class and critic (the default run's kind is `LossConfig.kind`'s default: fdm).
LOSS_KINDS: dict[str, LossKind] = {
    "gan": LossKind("infgan.train.losses.adversarial:NonSaturating", critic=True),
    "wgan_clip": LossKind("infgan.train.losses.adversarial:WassersteinClip", critic=True),
    "wgan_gp": LossKind("infgan.train.losses.adversarial:WassersteinGP", critic=True),
    "sig_score": LossKind("infgan.train.losses.sig_score:SigScore", critic=False),
    "fdm": LossKind("infgan.train.losses.fdm:FDM", critic=False),
    "fdm_gan": LossKind("infgan.train.losses.fdm_gan:FDMBesideCritic", critic=True),
}


def needs_critic(kind: str) -> bool:
    """Whether loss `kind` trains a CDE critic."""
    if kind not in LOSS_KINDS:
        raise ValueError(f"unknown loss kind {kind!r}; known: {', '.join(LOSS_KINDS)}")
    return LOSS_KINDS[kind].critic
