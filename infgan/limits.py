"""Sizes against the machine: a lower bound on the memory a run or a sample needs, checked before
any data is loaded or tensor allocated, so an impossible size is one line instead of an allocator
traceback or the kernel's silent OOM kill.

The bounds count only what must exist at once, in float32: the dataset, both models' weights with
Adam's two moments and averaged copies, and the activations backpropagation keeps for one step
(every solver step of the generator SDE and the critic CDE stores its MLPs' hidden layers and
vector-field outputs for the batch). Real use is higher (solver stages, gradients, allocator
slack), so a config refused here could never run; one accepted may still not fit.
"""

from __future__ import annotations

import os

from infgan.config import Config, ConfigError

FLOAT = 4  # bytes


def available_memory() -> int | None:
    """Bytes the kernel says are available now (Linux MemAvailable), else physical pages; None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _mlp(inp: int, width: int, layers: int, out: int) -> int:
    return inp * width + width + (layers - 1) * (width * width + width) + width * out + out


def run_bytes(cfg: Config, channels: int = 1) -> dict[str, int]:
    """Lower bounds, in bytes, of what one training process holds at once (see the module docstring)."""
    m, d, t = cfg.model, cfg.data, cfg.train
    h, w, L, c = m.hidden_size, m.mlp_size, m.num_layers, channels
    generator = _mlp(m.initial_noise_size, w, L, h) + 2 * _mlp(1 + h, w, L, h * max(1, m.noise_size)) + h * c + c
    critic = _mlp(1 + c, w, L, h) + _mlp(1 + h, w, L, h * (1 + c)) + h + 1
    weights = 4 * (generator + critic) * FLOAT  # weights, Adam's two moments, the averaged copy
    steps = max(1, int((d.t_size - 1) / m.dt))  # solver steps over a window
    per_step = 2 * (L * w + h * max(1, m.noise_size)) + L * w + h * (1 + c)  # G drift+diffusion, D field
    activations = 0 if m.adjoint else t.batch_size * steps * per_step * FLOAT
    data = d.size * d.t_size * (1 + c) * FLOAT
    return {"data": data, "weights": weights, "activations": activations}


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_run_memory(cfg: Config, channels: int = 1) -> None:
    """Refuse a config whose lower-bound memory exceeds what this machine has available."""
    have = available_memory()
    need = run_bytes(cfg, channels)
    if have is None or sum(need.values()) <= have:
        return
    parts = ", ".join(f"{k} {_gib(v)}" for k, v in need.items())
    raise ConfigError(
        f"this config needs at least {_gib(sum(need.values()))} ({parts}) and {_gib(have)} is available; "
        "lower train.batch_size, data.t_size, data.size, model.hidden_size or model.mlp_size"
    )


def check_sample_memory(n: int, times: int, channels: int, hidden: int) -> None:
    """Refuse `infgan sample -n N` when N paths (and the generator's states for them) cannot fit."""
    have = available_memory()
    need = n * times * (channels + hidden) * FLOAT + n * times * channels * 8
    if have is not None and need > have:
        most = max(1, int(n * have / need))
        raise ConfigError(
            f"-n {n}: {n} paths of {times} points need at least {_gib(need)} and {_gib(have)} is available; "
            f"ask for at most {most} (and write several files)"
        )
