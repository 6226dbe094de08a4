"""infgan: hyperparameter search for SDE-GANs (neural SDE generator, neural CDE critic)."""

__version__ = "0.1.0"
