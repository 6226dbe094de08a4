"""Seconds per training step and peak memory, per preset, one intra-op thread; prints JSON lines.

    python benchmarks/train_speed.py                       # reference, seed, default
    python benchmarks/train_speed.py --preset reference --steps 10 --set model.adjoint=false

Each preset runs in a fresh subprocess so that `peak_rss_mb` is that preset's own peak. The
reference and seed presets run at their batch of 1024. Besides the whole step it times the
forward passes alone (no autograd) to show where the time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def measure(preset: str, steps: int, sets: list[str]) -> dict:
    """Time `steps` training steps (after one warm-up step) of `preset` in this process."""
    import torch

    from infgan.config import load_config
    from infgan.data import build_dataset
    from infgan.data.dataset import interpolation_coeffs, sample_batch
    from infgan.train.state import init_state
    from infgan.train.step import Players, train_step

    torch.set_num_threads(1)
    cfg = load_config(preset, sets)
    data = build_dataset(cfg.data, cfg.seed)
    coeffs = data.coeffs()
    state = init_state(cfg, data.channels, torch.device("cpu"))
    players = Players(state.generator, state.discriminator)
    batch = cfg.train.batch_size

    def step() -> None:
        train_step(cfg, state, players, lambda: sample_batch(coeffs, batch, state.rng), data.ts)

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    s_per_step = (time.perf_counter() - start) / steps

    with torch.no_grad():
        start = time.perf_counter()
        fake = interpolation_coeffs(state.generator(data.ts, batch, state.rng))
        g_fwd = time.perf_counter() - start
        start = time.perf_counter()
        state.discriminator(torch.cat([sample_batch(coeffs, batch, state.rng), fake]))
        d_fwd = time.perf_counter() - start
    return {
        "preset": preset,
        "s_per_step": round(s_per_step, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "batch_size": batch,
        "n_critic": cfg.train.n_critic,
        "loss": cfg.loss.kind,
        "adjoint": cfg.model.adjoint,
        "t_size": cfg.data.t_size,
        "steps_timed": steps,
        "threads": torch.get_num_threads(),
        "s_generator_forward": round(g_fwd, 4),
        "s_discriminator_forward_real_and_fake": round(d_fwd, 4),
        "torch": torch.__version__,
        "sets": sets,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", help="preset(s) to time (default: reference, seed, default)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per preset (after one warm-up)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    presets = args.preset or ["reference", "seed", "default"]
    if args.child:
        print(json.dumps(measure(presets[0], args.steps, args.sets)), flush=True)
        return
    for preset in presets:
        cmd = [sys.executable, __file__, "--child", "--preset", preset, "--steps", str(args.steps)]
        cmd += [x for s in args.sets for x in ("--set", s)]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
