"""infgan: hyperparameter search for SDE-GANs (neural SDE generator, neural CDE discriminator)."""

__version__ = "0.1.0"
