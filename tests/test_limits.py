"""Sizes nobody can run are refused before any data is loaded or tensor allocated: one line with
the numbers, exit 2, nothing written, no Ray started."""

from __future__ import annotations

import pytest

from infgan.cli import main
from infgan.config import resolve
from infgan.limits import available_memory, run_bytes

from conftest import TINY


@pytest.mark.parametrize(
    "sets, words",
    [
        (["model.hidden_size=100000000"], "this config needs at least"),
        (["data.size=10000000000"], "this config needs at least"),
        (["train.batch_size=100000000000000000000"], "'train.batch_size' must be at most 2**53"),
    ],
)
def test_a_run_that_cannot_fit_is_refused_before_anything(tmp_path, capsys, sets, words):
    out = tmp_path / "r"
    args = sum((["--set", s] for s in [*TINY, *sets]), [])
    assert main(["train", "--out", str(out), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert not out.exists()


def test_a_sweep_whose_trials_cannot_fit_is_refused_before_ray(tmp_path, capsys):
    code = main(["tune", "--set", "model.hidden_size=100000000", "--storage", str(tmp_path), "--name", "x"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "this config needs at least" in err[0]
    assert not (tmp_path / "x").exists()


def test_the_lower_bound_grows_with_each_size_and_the_default_fits():
    base = run_bytes(resolve())
    assert sum(base.values()) < (available_memory() or 2**40)
    for key, grown in [
        ("activations", ["train.batch_size=256"]),
        ("activations", ["data.t_size=128"]),
        ("weights", ["model.hidden_size=32"]),
        ("data", ["data.size=16384"]),
    ]:
        assert run_bytes(resolve(sets=grown))[key] > base[key]
    assert run_bytes(resolve(sets=["model.adjoint=true"]))["activations"] == 0  # the adjoint keeps none


def test_sample_of_more_paths_than_memory_holds_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    args = sum((["--set", s] for s in TINY), [])
    assert main(["train", "--out", str(run), "--no-progress", *args]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "1000000000000", "--out", str(tmp_path / "s.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ask for at most" in err[0] and not (tmp_path / "s.npz").exists()
