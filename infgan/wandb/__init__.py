"""Everything Weights & Biases: run tracking (`tracking`), the W&B runs of a sweep's trials logged
from the Tune driver (`trials`), a search space as a W&B sweep file and a W&B agent's overrides
(`sweep_file`), and W&B's own sweep engine driving a Ray Tune sweep with no server (`engine`).

`wandb` and `sweeps` are imported only where a mode other than off, or a W&B searcher or
scheduler, is used. (This package is `infgan.wandb`; `import wandb` inside it is W&B's own.)
"""
