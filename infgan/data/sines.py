"""TimeGAN's sines (Yoon et al. 2019): independent sine waves with random frequency and phase.

Each channel of each series is sin(f * j + phi) at steps j = 0 .. t_size - 1, with f and phi drawn
uniformly from [0, 0.1) for every channel of every series, then mapped into [0, 1] as (x + 1) / 2.
TimeGAN's benchmark draws 10,000 series of 24 steps with 5 channels (`sine_data_generation(10000,
24, 5)`); the preset `sines` does the same (`data.size`, `data.t_size`, `data.dims`). No entry is
missing: TimeGAN's series are complete.
"""

from __future__ import annotations

import torch

FREQUENCY = PHASE = 0.1  # the upper bounds of the uniform draws


@torch.no_grad()
def sample(n: int, t_size: int, dims: int, g: torch.Generator) -> torch.Tensor:
    """`n` series (n, t_size, dims) in [0, 1]; frequencies and phases drawn by `g`."""
    freq = torch.rand(n, 1, dims, generator=g, dtype=torch.float64) * FREQUENCY
    phase = torch.rand(n, 1, dims, generator=g, dtype=torch.float64) * PHASE
    steps = torch.arange(t_size, dtype=torch.float64).view(1, t_size, 1)
    return ((torch.sin(freq * steps + phase) + 1) / 2).to(torch.get_default_dtype())


def channel_names(dims: int) -> list[str]:
    return [f"sin{i + 1}" for i in range(dims)]
