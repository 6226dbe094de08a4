"""Datasets: synthetic processes and the batching and normalisation every run shares."""

from infgan.data.dataset import Dataset, build_dataset

__all__ = ["Dataset", "build_dataset"]
