"""Weights & Biases for runs: run tracking (`tracking`) and what a W&B agent hands `infgan train`
(`agent`). W&B's sweep engine and sweep file, which sweeps use, live with the other searchers and
schedulers in `infgan.tune`.

`wandb` is imported only where a mode other than off is used. (This package is `infgan.wandb`;
`import wandb` inside it is W&B's own.)
"""
