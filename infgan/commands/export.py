"""`infgan export`: a trained generator as one self-contained TorchScript file.

    model = torch.jit.load("generator.ts")   # needs torch only: no infgan, torchsde or torchcde
    paths = model(1000, 0)                   # (n, time, channels) in data units, from (n, seed)
    t = model.times()                        # (time,) in the data's time units since the start
    names = model.channels()                 # channel names

The file holds the generator's weights and code, its solver (the reversible Heun loop over the
fixed grid, increments drawn from a `torch.Generator` seeded by `seed`, in the order `infgan sample`
draws them), the time grid, the normalisation and the value transforms with their anchor levels, so
`model(n, seed)` equals `infgan sample RUN -n n --seed seed`'s `paths`.

Why TorchScript and not `torch.export` (.pt2): generating from a seed needs a random generator
seeded inside the program, and `torch.export` cannot trace one (seeding from an input is a
data-dependent value it refuses; its graphs have no seeded RNG). TorchScript compiles the loop and
the seeded `torch.Generator` as they are. TorchScript is deprecated in recent torch releases (it
warns on save and load) but still loads everywhere torch does; `.pt2` is refused with this reason.
"""

# No `from __future__ import annotations`: TorchScript reads the class-body annotations as types.

import argparse
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from infgan.commands.sample import CONDITION_STREAM
from infgan.config import ConfigError
from infgan.data import conditions, transforms
from infgan.metrics.marginal import GENERATE_CHUNK
from infgan.models import Generator
from infgan.models.solver import Grid
from infgan.outputs import check_output
from infgan.train.trained import TrainedRun

SUFFIXES = (".ts", ".pt")


class ExportedGenerator(nn.Module):
    """Generated paths in data units from (n, seed), with nothing outside torch (scriptable)."""

    # Declared here, not in __init__: TorchScript types attributes from the class body.
    dts: list[float]
    before: list[int]
    after: list[int]
    weight: list[float]
    names: list[str]
    kinds: list[str]
    cond_names: list[str]
    cond_kinds: list[str]
    cond_values: list[list[str]]
    cond_mean: list[float]
    cond_std: list[float]
    if TYPE_CHECKING:  # for mypy only: TorchScript types these from their values
        grid_times: torch.Tensor
        sqrt_dt: torch.Tensor
        data_times: torch.Tensor
        mean: torch.Tensor
        std: torch.Tensor
        anchor_pool: torch.Tensor
        quantiles: torch.Tensor
        obs_scale: torch.Tensor
        obs_mix: torch.Tensor
        cond_pool: torch.Tensor

    def __init__(self, generator: Generator, described: dict, dt: float, unit_time: bool):
        super().__init__()
        cfg = generator.cfg
        self.initial = generator.initial
        self.drift, self.diffusion = generator.func.drift, generator.func.diffusion
        self.readout = generator.readout
        # Observation noise (model.obs_noise): its learned per-channel scale, drawn as the generator draws it.
        self.obs_noise = generator.noise_scale is not None
        obs_scale = torch.zeros(generator.readout.out_features)
        if generator.noise_scale is not None:
            obs_scale = torch.nn.functional.softplus(generator.noise_scale.detach()) * generator.keep
        self.register_buffer("obs_scale", obs_scale)
        self.register_buffer("obs_mix", generator.noise_mix.detach().clone())
        self.hidden, self.noise, self.initial_noise = cfg.hidden_size, cfg.noise_size, cfg.initial_noise_size
        self.chunk = GENERATE_CHUNK
        ts = torch.tensor(described["times"], dtype=torch.get_default_dtype())
        grid = Grid(ts, dt)
        scale = 1.0 / float(ts[-1]) if unit_time else 1.0
        self.register_buffer("grid_times", grid.times * scale)  # what the vector fields see
        self.register_buffer("sqrt_dt", grid.dt.sqrt())
        self.dts = grid.dt_list
        self.before = [j for j, _, _ in grid.outputs]
        self.after = [k for _, k, _ in grid.outputs]
        self.weight = [w for _, _, w in grid.outputs]
        self.register_buffer("data_times", ts * described.get("time_scale", 1.0))
        self.names = list(described["channels"])
        self.register_buffer("mean", torch.tensor(described["mean"], dtype=ts.dtype))
        self.register_buffer("std", torch.tensor(described["std"], dtype=ts.dtype))
        self.kinds = list(described.get("transform") or ["none"] * len(self.names))
        pool = torch.tensor(described.get("anchors") or [[1.0] * len(self.names)], dtype=ts.dtype)
        complete = pool[torch.isfinite(pool).all(dim=1)]  # as transforms.draw_anchors
        self.register_buffer("anchor_pool", complete if complete.size(0) else torch.nan_to_num(pool))
        self.register_buffer("quantiles", torch.tensor(described.get("quantiles") or [[0.0]], dtype=ts.dtype))
        # A conditional generator: the encoding of data.condition_columns and the training pool
        # (infgan/data/conditions.py), so conditions are drawn, or encoded from text, as infgan does.
        specs = described.get("conditions") or []
        self.cond_width = conditions.width(specs)
        self.condition_stream = CONDITION_STREAM  # an attribute: TorchScript reads no globals
        self.cond_names = [sp["name"] for sp in specs]
        self.cond_kinds = [sp["kind"] for sp in specs]
        self.cond_values = [list(sp.get("values", [])) for sp in specs]
        self.cond_mean = [float(sp.get("mean", 0.0)) for sp in specs]
        self.cond_std = [float(sp.get("std", 1.0)) for sp in specs]
        pool = conditions.encode(specs, described["condition_pool"]) if specs else torch.zeros(1, 0)
        self.register_buffer("cond_pool", pool.to(ts.dtype))

    @torch.jit.export
    def times(self) -> torch.Tensor:
        """The output times (time,), in the data's time units since the series' start."""
        return self.data_times

    @torch.jit.export
    def channels(self) -> list[str]:
        return self.names

    @torch.jit.export
    def condition_names(self) -> list[str]:
        """The condition columns of a conditional generator ([] otherwise)."""
        return self.cond_names

    def _field(self, k: int, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tx = torch.cat([self.grid_times[k].expand(x.size(0), 1), x, c], dim=1)
        return self.drift(tx), self.diffusion(tx).view(x.size(0), self.hidden, self.noise)

    def _hidden_paths(self, batch: int, g: torch.Generator, c: torch.Tensor) -> torch.Tensor:
        """The reversible Heun solve (infgan/models/solver.py) at the output times (time, batch, hidden)."""
        y = self.initial(torch.cat([torch.randn(batch, self.initial_noise, generator=g), c], dim=1))
        dw = torch.randn(len(self.dts), batch, self.noise, generator=g) * self.sqrt_dt.view(-1, 1, 1)
        z = y
        f0, g0 = self._field(0, y, c)
        ys = [y]
        for k in range(len(self.dts)):
            dt = self.dts[k]
            g0dw = torch.bmm(g0, dw[k].unsqueeze(-1)).squeeze(-1)
            z1 = 2 * y - z + f0 * dt + g0dw
            f1, g1 = self._field(k + 1, z1, c)
            g1dw = torch.bmm(g1, dw[k].unsqueeze(-1)).squeeze(-1)
            y = y + (f0 + f1) * (0.5 * dt) + (g0dw + g1dw) * 0.5
            z, f0, g0 = z1, f1, g1
            ys.append(y)
        out = [
            ys[k] if w == 1.0 else (1.0 - w) * ys[j] + w * ys[k]
            for j, k, w in zip(self.before, self.after, self.weight)
        ]
        return torch.stack(out)

    def _data_units(self, values: torch.Tensor, seed: int) -> torch.Tensor:
        """Normalised (n, time, channels) to data units, as infgan/data/dataset.py's to_data_units:
        the same anchor draw and the same (scripted) `transforms.inverse`."""
        g = torch.Generator()
        g.manual_seed(seed)
        anchors = self.anchor_pool[torch.randint(0, self.anchor_pool.size(0), (values.size(0),), generator=g)]
        return transforms.inverse(values * self.std + self.mean, self.kinds, anchors, self.names, self.quantiles)

    def _paths(self, n: int, seed: int, cond: torch.Tensor) -> torch.Tensor:
        g = torch.Generator()
        g.manual_seed(seed)
        parts: list[torch.Tensor] = []
        i = 0
        while i < n:
            batch = min(self.chunk, n - i)
            ys = self.readout(self._hidden_paths(batch, g, cond[i : i + batch]).transpose(0, 1))
            if self.obs_noise:  # after the Brownian increments, as the generator draws it
                ys = ys + (torch.randn(ys.shape, generator=g) @ self.obs_mix.T) * self.obs_scale
            parts.append(ys)
            i += batch
        return self._data_units(torch.cat(parts), seed)

    def forward(self, n: int, seed: int) -> torch.Tensor:
        """`n` paths (n, time, channels) in data units from noise fixed by `seed` (a conditional
        generator's conditions drawn from its training series', as `infgan sample` draws them)."""
        if self.cond_width == 0:
            return self._paths(n, seed, torch.zeros(n, 0))
        g = torch.Generator()
        g.manual_seed(seed + self.condition_stream)
        return self._paths(n, seed, self.cond_pool[torch.randint(0, self.cond_pool.size(0), (n,), generator=g)])

    @torch.jit.export
    def conditioned(self, n: int, seed: int, condition: dict[str, str]) -> torch.Tensor:
        """`n` paths under one condition, {column: value} as `infgan sample --condition` takes it."""
        row = torch.zeros(self.cond_width)
        col = 0
        for j in range(len(self.cond_names)):
            name = self.cond_names[j]
            if name not in condition:
                raise ValueError("missing condition " + name)
            if self.cond_kinds[j] == "number":
                row[col] = (float(condition[name]) - self.cond_mean[j]) / self.cond_std[j]
                col += 1
            else:
                values = self.cond_values[j]
                if condition[name] not in values:
                    raise ValueError("condition " + name + ": " + condition[name] + " was never seen in training")
                row[col + values.index(condition[name])] = 1.0
                col += len(values)
        return self._paths(n, seed, row.unsqueeze(0).expand(n, self.cond_width))


def export_generator(run_dir: Path, out: Path) -> Path:
    """Write the run's generator (final, or the latest checkpoint's) as a TorchScript file at `out`."""
    if out.suffix == ".pt2":
        raise ConfigError(
            f"--out {out}: .pt2 (torch.export) cannot hold a generator seeded inside it; use .ts (TorchScript)"
        )
    if out.suffix not in SUFFIXES:
        raise ConfigError(f"--out {out}: unknown suffix '{out.suffix}'; allowed: {', '.join(SUFFIXES)} (TorchScript)")
    trained = TrainedRun.open(run_dir)
    generator, cfg = trained.generator(), trained.cfg
    assert isinstance(generator, Generator)
    module = ExportedGenerator(generator.eval(), trained.data, cfg.model.dt, cfg.model.unit_time)
    for p in module.parameters():
        p.requires_grad_(False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # said once, in the docs
        scripted = torch.jit.script(module)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        torch.jit.save(scripted, str(tmp))
    tmp.replace(out)
    return out


# The command line


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="FILE.ts", help="the file to write (.ts or .pt: TorchScript)")


def run(args: argparse.Namespace) -> int:
    out = export_generator(Path(args.run_dir), check_output(Path(args.out), "file", "--out"))
    print(f"wrote {out}: torch.jit.load('{out}')(n, seed) gives n paths in data units; .times(), .channels()")
    return 0
