"""The SDE-GAN's two players: a neural SDE generator and a neural CDE discriminator."""

from infgan.models.discriminator import Discriminator
from infgan.models.generator import Generator

__all__ = ["Discriminator", "Generator"]
