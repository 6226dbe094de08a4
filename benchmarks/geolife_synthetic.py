"""Write a GeoLife-layout tree of simulated trips (Data/<user>/Trajectory/*.plt, labels.txt), for
trying `data.dataset: geolife` without the real download; prints the tree's path and trip count.

    python benchmarks/geolife_synthetic.py /tmp/geolife --users 30 --days 6
    infgan train --config geolife --set data.path=/tmp/geolife

Each user records a few trips a day, logged every 2-5 s: walks (about 1.4 m/s) and bus rides
(about 8 m/s with stops), each a correlated random walk in heading and speed with GPS noise of
a few metres; trips are separated by gaps of 20-90 minutes inside one PLT file per day, and
labels.txt names each trip's mode. The real data's point is the layout and the irregular times,
not these particular dynamics.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

HEADER = "Geolife trajectory\nWGS 84\nAltitude is in Feet\nReserved 3\n0,2,255,My Track,0,0,2,8421376\n0\n"
METRES_PER_DEGREE = 6_371_008.8 * math.pi / 180
DAY_ZERO = 25569.0  # 1970-01-01 in GeoLife's day count (days since 1899-12-30)


def trip(rng: np.random.Generator, mode: str, points: int) -> tuple[np.ndarray, np.ndarray]:
    """(seconds since the trip's start, (points, 2) metres east/north)."""
    dt = rng.uniform(2, 5, points - 1)
    base = 1.4 if mode == "walk" else 8.0
    speed = np.clip(base * (1 + 0.3 * rng.standard_normal(points - 1).cumsum() / np.sqrt(points)), 0, None)
    if mode == "bus":  # stops
        speed[rng.random(points - 1) < 0.1] = 0.0
    heading = rng.uniform(0, 2 * np.pi) + 0.15 * rng.standard_normal(points - 1).cumsum()
    steps = np.stack([np.cos(heading), np.sin(heading)], axis=1) * (speed * dt)[:, None]
    xy = np.vstack([np.zeros((1, 2)), steps.cumsum(axis=0)]) + rng.normal(0, 3, (points, 2))
    return np.concatenate([[0.0], dt.cumsum()]), xy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    trips = 0
    for u in range(args.users):
        user = args.root / "Data" / f"{u:03d}"
        labels = ["Start Time\tEnd Time\tTransportation Mode"]
        for d in range(args.days):
            start = 1_230_000_000 + 86400 * (d + 7 * u) + rng.uniform(6, 9) * 3600
            lat0, lon0 = 39.9 + rng.normal(0, 0.05), 116.4 + rng.normal(0, 0.05)
            lines, t = [], start
            for _ in range(rng.integers(2, 5)):
                mode = "walk" if rng.random() < 0.5 else "bus"
                seconds, xy = trip(rng, mode, int(rng.integers(80, 300)))
                lat = lat0 + xy[:, 1] / METRES_PER_DEGREE
                lon = lon0 + xy[:, 0] / (METRES_PER_DEGREE * math.cos(math.radians(lat0)))
                for s, a, o in zip(t + seconds, lat, lon):
                    lines.append(f"{a:.6f},{o:.6f},0,150,{DAY_ZERO + s / 86400:.10f},2009-01-01,00:00:00")
                fmt = "%Y/%m/%d %H:%M:%S"
                stamp = [np.datetime64(int(x), "s").astype(object).strftime(fmt) for x in (t, t + seconds[-1])]
                labels.append(f"{stamp[0]}\t{stamp[1]}\t{mode}")
                t += seconds[-1] + rng.uniform(20, 90) * 60
                lat0, lon0 = lat[-1], lon[-1]
                trips += 1
            path = user / "Trajectory" / f"{d:04d}.plt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(HEADER + "\n".join(lines) + "\n")
        (user / "labels.txt").write_text("\n".join(labels) + "\n")
    print(f'{{"root": "{args.root}", "users": {args.users}, "trips": {trips}}}')


if __name__ == "__main__":
    main()
