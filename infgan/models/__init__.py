"""The SDE-GAN's two players: a neural SDE generator and a neural CDE critic."""

from infgan.models.critic import Critic
from infgan.models.generator import Generator

__all__ = ["Critic", "Generator"]
