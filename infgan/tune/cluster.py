"""Connecting to Ray (a fresh local instance, or a running cluster) and the checks made before
any work is started, so that a bad request fails in seconds with one line instead of hanging."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from infgan.config import ConfigError


def import_ray():
    """Import ray, or say in one line how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("this needs Ray: pip install 'ray[default,tune,train]'") from None
    return ray


@contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[None]:
    """Attach to `address`, or start a fresh local Ray and stop it afterwards.

    A local instance never attaches to a stale cluster (`address="local"`), runs with token
    authentication (Ray 2.60 turns it on for a local instance unless RAY_AUTH_MODE=disabled is
    exported: its GCS and raylet listen on all interfaces, so the token is what keeps other users
    out), and serves the dashboard on 127.0.0.1 only. If this process is already
    connected (a test session, a notebook), that connection is used and left open.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    env = {"env_vars": {"OMP_NUM_THREADS": "1"}}  # tiny tensors: one intra-op thread per worker
    if address is None:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=True, dashboard_host="127.0.0.1",
                 runtime_env=env, log_to_driver=True)
    else:
        try:
            ray.init(address=address, runtime_env=env, log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"--address {address}: cannot connect to a Ray cluster ({first})") from None
    try:
        yield
    finally:
        ray.shutdown()


def check_state_api(wait_s: float = 30.0) -> None:
    """Ray's State API must answer (it may take a few seconds after start-up): Ray Train frees a
    stopped run's workers through it."""
    try:
        from ray.util.state import list_nodes
    except ImportError:
        raise ConfigError("Ray's State API is missing: pip install 'ray[default,tune,train]'") from None
    ray = import_ray()
    # The connected cluster's own address: with several Ray instances on one machine the State
    # API cannot guess which one is meant.
    address = ray.get_runtime_context().gcs_address
    deadline = time.monotonic() + wait_s
    while True:
        try:
            list_nodes(address=address, limit=1, timeout=10, raise_on_missing_output=False)
            return
        except Exception as e:  # noqa: BLE001 - any failure here means the same thing to the user
            if time.monotonic() > deadline:
                raise ConfigError("Ray's State API is unavailable (install 'ray[default]' and do not disable the "
                                  f"dashboard): without it stopped workers are never released ({type(e).__name__})"
                                  ) from None
            time.sleep(1.0)


def check_resources(what: str, cpus: float, gpus: float) -> None:
    """Refuse a request the cluster cannot hold, instead of waiting forever for it."""
    ray = import_ray()
    have = ray.cluster_resources()
    have_cpu, have_gpu = have.get("CPU", 0.0), have.get("GPU", 0.0)
    if cpus > have_cpu or gpus > have_gpu:
        raise ConfigError(f"{what} needs {cpus:g} CPUs and {gpus:g} GPUs; the Ray cluster has "
                          f"{have_cpu:g} CPUs and {have_gpu:g} GPUs")
