"""What a W&B agent hands `infgan train`: its run's config as config overrides (`infgan train` run by
`wandb agent` on a sweep file that `infgan wandb-sweep` wrote)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infgan.config import config_paths, flatten, unflatten


def agent_overrides(run_config: Mapping[str, Any]) -> dict[str, Any]:
    """Config overrides from a W&B agent's run config: W&B's own keys dropped, integral floats of int paths as ints."""
    flat = flatten({k: v for k, v in run_config.items() if not k.startswith("_")})
    paths = config_paths()
    for key, value in flat.items():
        tp = paths.get(key, (None,))[0]
        if tp is int and isinstance(value, float) and value.is_integer():
            flat[key] = int(value)  # q_log_uniform_values hands out 16.0
    return unflatten(flat)
