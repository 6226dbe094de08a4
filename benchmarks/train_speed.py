"""Seconds per training step and peak memory, per preset, one intra-op thread; prints JSON lines.

    python benchmarks/train_speed.py                       # reference, seed, default
    python benchmarks/train_speed.py --preset reference --steps 10 --set model.adjoint=true
    python benchmarks/train_speed.py --preset reference --compare-reference path/to/sde_gan.py
    python benchmarks/train_speed.py --device cuda
    python benchmarks/train_speed.py --preset default --device cuda --share 4

Each preset runs in a fresh subprocess so that its peak memory (`peak_rss_mb`, and on CUDA
`peak_cuda_mb`) is its own. Steps are timed in `--repeats` rounds of `--steps` steps each, after
one warm-up step, and the median round is reported. It also times the forward passes alone (no
autograd) to show where the time goes.

`--compare-reference PATH` times torchsde's `examples/sde_gan.py` (the unmodified file, given by
its path; it is not part of infgan) side by side in the same process: its own Generator,
Critic and data at its defaults (batch 1024, 64 times, hidden 16), its own training step
(one simultaneous update, weight clipping), rounds alternating with infgan's, so that machine noise
hits both alike. The ratio `reference_s_per_step / s_per_step` is the speed-up.

`--losses gan,sig_score,fdm,gan+sig` times each loss variant of every preset in turn (a
`KIND+sig` variant adds the signature-kernel term beside the critic, `loss.sig_weight=1`; a
`:KEY=VALUE` suffix adds a setting, `fdm:loss.fdm_partners=0`), each in
its own subprocess for its own peak memory, and ends with one line of each variant's seconds per
step and peak memory against the first variant's.

`--batch-sizes 64,128,256,512` times every variant (`--losses`, default the preset's own loss) at
each global batch size, one subprocess each, and ends with one line per variant: seconds per step
and peak memory by batch size, each as a multiple of the smallest batch's, and the log-log slope of
the cost (1: linear in the batch, 2: its square). `--plot PATH` draws the curves (log-log).

`--share N` runs one copy alone, then N copies at once (as N trials placed on one GPU with
`gpus_per_worker: 1/N`), and reports the aggregate steps/s of the N against the one. The copies
overlap for most of their run, not all of it (each starts, loads and warms up on its own).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _timer(device: str) -> Callable[[], float]:
    import torch

    def now() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    return now


def variant_config(preset: str, sets: list[str]):
    """The preset with a variant's `sets`. A variant of a kind that trains no critic leaves the
    preset's critic settings (the reference's `n_critic`, its critic's rate) out, as `resolve` does
    for any shipped preset."""
    from infgan.config import resolve

    return resolve(source=preset, sets=sets)


def infgan_step(preset: str, sets: list[str], device: str) -> tuple[Callable[[], None], dict]:
    """infgan's training step for `preset`, ready to call, and what it ran."""
    import torch

    from infgan.data import build_dataset
    from infgan.data.dataset import sample_batch
    from infgan.train import losses
    from infgan.train.state import init_state
    from infgan.train.step import Players, train_step

    cfg = variant_config(preset, sets)
    data = build_dataset(cfg.data, cfg.seed)
    dev = torch.device(device)
    coeffs, ts = data.coeffs().to(dev), data.ts.to(dev)
    observed = data.observed()
    observed = None if observed is None else observed.to(dev)
    state = init_state(cfg, data.channels, dev)
    players = Players(state.generator, state.critic)
    loss = losses.build(cfg.loss)
    batch = cfg.train.batch_size

    def step() -> None:
        next_real = lambda: sample_batch(coeffs, batch, state.rng, None, observed)  # noqa: E731
        train_step(loss, state, players, next_real, ts, cfg.train.n_critic)
        state.step += 1  # a kernel's time points change from step to step, as in a run

    def forwards() -> dict:
        from infgan.data.dataset import interpolation_coeffs

        now = _timer(device)
        with torch.no_grad():
            start = now()
            fake = interpolation_coeffs(state.generator(ts, batch, state.rng))
            g_fwd = now() - start
            if state.critic is None:
                return {"s_generator_forward": round(g_fwd, 4)}
            start = now()
            state.critic(torch.cat([sample_batch(coeffs, batch, state.rng).coeffs, fake]))
            d_fwd = now() - start
        return {"s_generator_forward": round(g_fwd, 4), "s_critic_forward_real_and_fake": round(d_fwd, 4)}

    info = {
        "batch_size": batch,
        "n_critic": cfg.train.n_critic,
        "loss": cfg.loss.kind,
        "sig_weight": cfg.loss.sig_weight,
        "adjoint": cfg.model.adjoint,
        "t_size": cfg.data.t_size,
        "hidden_size": cfg.model.hidden_size,
        "forwards": forwards,
    }
    return step, info


def reference_step(path: Path, device: str) -> Callable[[], None]:
    """One training step of torchsde's examples/sde_gan.py at its defaults, built from its own classes."""
    import torch

    sys.modules.setdefault("fire", types.ModuleType("fire"))  # imported by the example for its CLI only
    spec = importlib.util.spec_from_file_location("torchsde_sde_gan_example", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--compare-reference {path}: not a Python file")
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    batch, hidden, mlp, noise, init_noise, layers = 1024, 16, 16, 3, 5, 1  # the example's defaults
    torch.manual_seed(0)
    ts, data_size, loader = ref.get_data(batch_size=batch, device=device)
    batches = (b for _ in iter(int, 1) for b in loader)
    generator = ref.Generator(data_size, init_noise, noise, hidden, mlp, layers).to(device)
    critic = ref.Discriminator(data_size, hidden, mlp, layers).to(device)
    with torch.no_grad():
        for p in generator._initial.parameters():
            p *= 3
        for p in generator._func.parameters():
            p *= 0.5
    g_opt = torch.optim.Adadelta(generator.parameters(), lr=2e-4, weight_decay=0.01)
    critic_opt = torch.optim.Adadelta(critic.parameters(), lr=1e-3, weight_decay=0.01)

    def step() -> None:
        (real,) = next(batches)
        loss = critic(generator(ts, batch)) - critic(real)
        loss.backward()
        for p in generator.parameters():
            p.grad *= -1
        g_opt.step()
        critic_opt.step()
        g_opt.zero_grad()
        critic_opt.zero_grad()
        with torch.no_grad():
            for module in critic.modules():
                if isinstance(module, torch.nn.Linear):
                    lim = 1 / module.out_features
                    module.weight.clamp_(-lim, lim)

    return step


def measure(preset: str, steps: int, repeats: int, sets: list[str], device: str, reference: Path | None) -> dict:
    """Median seconds per step over `repeats` rounds of `steps` steps (after one warm-up step)."""
    import torch

    torch.set_num_threads(1)
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here")
    now = _timer(device)
    ours, info = infgan_step(preset, sets, device)
    theirs = reference_step(reference, device) if reference else None
    ours()
    if theirs:
        theirs()
    rounds: dict[str, list[float]] = {"infgan": [], "reference": []}
    for _ in range(repeats):
        for name, step in (("infgan", ours), ("reference", theirs)):
            if step is None:
                continue
            start = now()
            for _ in range(steps):
                step()
            rounds[name].append((now() - start) / steps)
    forwards = info.pop("forwards")()
    out = {
        "preset": preset,
        "device": device,
        "s_per_step": round(statistics.median(rounds["infgan"]), 4),
        "s_per_step_rounds": [round(r, 4) for r in rounds["infgan"]],
        **info,
        "steps_per_round": steps,
        "threads": torch.get_num_threads(),
        **forwards,
        "torch": torch.__version__,
        "sets": sets,
    }
    if theirs:
        ref = statistics.median(rounds["reference"])
        out["reference_s_per_step"] = round(ref, 4)
        out["reference_s_per_step_rounds"] = [round(r, 4) for r in rounds["reference"]]
        out["speedup_vs_reference"] = round(ref / out["s_per_step"], 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if device == "cuda":
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", help="preset(s) to time (default: reference, seed, default)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the median is reported (default 3)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--compare-reference", type=Path, metavar="PATH", help="torchsde's examples/sde_gan.py, timed side by side"
    )
    parser.add_argument(
        "--share",
        type=int,
        default=1,
        metavar="N",
        help="also run N copies at once on the device (as N trials sharing one GPU) and report the "
        "aggregate steps/s against one copy alone",
    )
    parser.add_argument(
        "--losses",
        metavar="KIND[,KIND+sig...]",
        help="compare loss variants per preset, e.g. gan,sig_score,fdm,gan+sig (KIND+sig: loss.sig_weight=1)",
    )
    parser.add_argument(
        "--batch-sizes",
        metavar="B[,B...]",
        help="time each variant at these global batch sizes (a curve: JSON, and --plot)",
    )
    parser.add_argument("--plot", type=Path, metavar="PATH", help="with --batch-sizes: the curves as a PNG")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare_reference and not args.compare_reference.is_file():
        parser.exit(2, f"train_speed.py: error: --compare-reference {args.compare_reference}: no such file\n")
    if args.steps < 1 or args.repeats < 1 or args.share < 1:
        parser.exit(2, "train_speed.py: error: --steps, --repeats and --share must be >= 1\n")
    presets = args.preset or ["reference", "seed", "default"]
    if args.child:
        result = measure(presets[0], args.steps, args.repeats, args.sets, args.device, args.compare_reference)
        print(json.dumps(result), flush=True)
        return
    if args.batch_sizes:
        try:
            sizes = sorted({int(b) for b in args.batch_sizes.split(",")})
        except ValueError:
            parser.exit(
                2, f"train_speed.py: error: --batch-sizes takes integers, e.g. 64,128,256; got {args.batch_sizes!r}\n"
            )
        if sizes[0] < 2:
            parser.exit(2, "train_speed.py: error: --batch-sizes must be >= 2\n")
        curve(presets, args.losses.split(",") if args.losses else [""], sizes, args)
        return
    if args.losses:
        compare_losses(presets, args.losses.split(","), args)
        return
    for preset in presets:
        cmd = [sys.executable, __file__, "--child", "--preset", preset, "--device", args.device]
        cmd += ["--steps", str(args.steps), "--repeats", str(args.repeats)]
        cmd += [x for s in args.sets for x in ("--set", s)]
        if args.share > 1:
            print(json.dumps(share(cmd, args.share)), flush=True)
            continue
        if args.compare_reference:
            cmd += ["--compare-reference", str(args.compare_reference)]
        subprocess.run(cmd, check=True)


def child(preset: str, sets: list[str], args: argparse.Namespace) -> dict:
    """One measurement in a fresh subprocess (its own peak memory); its JSON."""
    cmd = [sys.executable, __file__, "--child", "--preset", preset, "--device", args.device]
    cmd += ["--steps", str(args.steps), "--repeats", str(args.repeats)]
    cmd += [x for s in sets for x in ("--set", s)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def curve(presets: list[str], variants: list[str], sizes: list[int], args: argparse.Namespace) -> None:
    """Each variant of each preset at each batch size; then a line per variant: cost by batch size."""
    import math

    lines = []
    for preset in presets:
        for variant in variants:
            points = []
            for b in sizes:
                sets = [*args.sets, *(loss_sets(variant) if variant else []), f"train.batch_size={b}"]
                points.append(child(preset, sets, args))
                print(json.dumps({"variant": variant or "preset", **points[-1]}), flush=True)
            first = points[0]
            slope = math.log(points[-1]["s_per_step"] / first["s_per_step"]) / math.log(sizes[-1] / sizes[0])
            line = {
                "preset": preset,
                "device": args.device,
                "variant": variant or f"preset ({first['loss']})",
                "batch_sizes": sizes,
                "s_per_step": [p["s_per_step"] for p in points],
                "time_ratio": [round(p["s_per_step"] / first["s_per_step"], 2) for p in points],
                "peak_rss_mb": [p["peak_rss_mb"] for p in points],
                "loglog_slope": round(slope, 2) if len(sizes) > 1 else None,
            }
            if args.device == "cuda":
                line["peak_cuda_mb"] = [p.get("peak_cuda_mb") for p in points]
            lines.append(line)
            print(json.dumps(line), flush=True)
    if args.plot:
        plot_curves(lines, args.plot)


def plot_curves(lines: list[dict], path: Path) -> None:
    """Seconds per step against the batch size, log-log, one curve per preset and variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (time_ax, mem_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for line in lines:
        label = f"{line['preset']}: {line['variant']} (slope {line['loglog_slope']})"
        time_ax.plot(line["batch_sizes"], line["s_per_step"], marker="o", label=label)
        mem_ax.plot(line["batch_sizes"], line["peak_rss_mb"], marker="o", label=line["variant"])
    for ax, what in ((time_ax, "seconds per step"), (mem_ax, "peak memory (MB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("global batch size")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    time_ax.legend(fontsize=7)
    fig.suptitle(f"training step cost by batch size ({lines[0]['device']}, one thread)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def loss_sets(variant: str) -> list[str]:
    """The --set items of a loss variant: `KIND`, `KIND+sig` with the kernel term beside the critic,
    each optionally followed by `:KEY=VALUE` items (`fdm:loss.fdm_partners=0`)."""
    variant, *items = variant.split(":")
    kind, _, extra = variant.partition("+")
    if extra not in ("", "sig"):
        raise SystemExit(f"train_speed.py: error: --losses {variant!r}: write KIND or KIND+sig")
    return [f"loss.kind={kind}"] + (["loss.sig_weight=1"] if extra else []) + items


def compare_losses(presets: list[str], variants: list[str], args: argparse.Namespace) -> None:
    """Each preset under each loss variant, one subprocess each; then a line of ratios to the first."""
    for preset in presets:
        results = []
        for variant in variants:
            results.append(child(preset, [*args.sets, *loss_sets(variant)], args))
            print(json.dumps({"variant": variant, **results[-1]}), flush=True)
        first = results[0]
        summary = {
            "preset": preset,
            "device": args.device,
            "against": variants[0],
            "variants": {
                v: {
                    "s_per_step": r["s_per_step"],
                    "time_ratio": round(r["s_per_step"] / first["s_per_step"], 2),
                    "peak_rss_mb": r["peak_rss_mb"],
                    **({"peak_cuda_mb": r["peak_cuda_mb"]} if "peak_cuda_mb" in r else {}),
                }
                for v, r in zip(variants, results)
            },
        }
        print(json.dumps(summary), flush=True)


def share(cmd: list[str], n: int) -> dict:
    """One copy alone, then `n` copies started together: aggregate steps/s and its ratio to one."""

    def run(copies: int) -> list[dict]:
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
        outs = [p.communicate()[0] for p in procs]
        if any(p.returncode for p in procs):
            raise SystemExit("train_speed.py: a copy failed (its error is above)")
        return [json.loads(out.strip().splitlines()[-1]) for out in outs]

    (alone,) = run(1)
    together = run(n)
    aggregate = sum(1.0 / r["s_per_step"] for r in together)
    return {
        "preset": alone["preset"],
        "device": alone["device"],
        "copies": n,
        "s_per_step_alone": alone["s_per_step"],
        "s_per_step_each": [r["s_per_step"] for r in together],
        "steps_per_s_alone": round(1.0 / alone["s_per_step"], 3),
        "steps_per_s_aggregate": round(aggregate, 3),
        "aggregate_vs_alone": round(aggregate * alone["s_per_step"], 2),
        "peak_cuda_mb_each": [r.get("peak_cuda_mb") for r in together],
    }


if __name__ == "__main__":
    main()
