"""Per-channel value transforms (`data.transform`), applied to each window before normalisation and
inverted for samples and plots.

Prices, volumes and other positive or level-shifting quantities are hard to model as they are:
a generator of raw prices can go negative, and windows from different years sit at different
levels, so held-out years look unlike training years. Practitioners model a transform instead:

- `none`: the values as they are.
- `log`: log(x); the inverse exp keeps every generated value positive. Needs x > 0.
- `log_return`: log(x / x0), x0 the window's first observation of that channel: every window
  starts at 0 and only the relative path is modelled. Needs x > 0.
- `relative`: x / x0 - 1, the same without the log. Needs x > 0.
- `diff`: the change since the channel's previous observation (0 at the first one).
- `high`, `low`: for OHLC bars (channels named `Open` and `Close` needed): log(High / max(Open,
  Close)) and log(min(Open, Close) / Low), inverted with their absolute value, so a generated
  Low <= Open, Close <= High at every point by construction, whatever the generator outputs.
- `close_ratio`: log(x / Close), for a bar's other prices (a channel named `Close` needed): the
  Open, or an adjusted close that equals the Close, as its small ratio to the Close rather than a
  level of its own, so that the generated prices of one bar move together as real ones do (a
  generator of six separate levels put Open 10 % from Close where real bars have 1 %). A channel
  always equal to the Close is 0 here and generated equal to it.
- `quantile`: the channel's normal scores, Phi^-1(F(x)) with F the training values' distribution
  (kept as `QUANTILES` of its quantiles), inverted through the same quantiles: every channel looks
  Gaussian to the generator, and every generated value lands inside the training range with the
  training marginal. For channels whose values no smooth SDE makes directly: a value repeated
  often (a light off 78 % of the time, a count of 0) takes the middle of its share of
  probabilities, and everything the generator puts in that share comes back as exactly that
  value; a bounded or heavy-tailed one (a uniform random number, spiky use) comes back bounded
  with its tails. Fitted on the training windows only; saved with the run (data.json).

The window-anchored transforms (`log_return`, `relative`, `diff`) lose the window's level x0.
Inverting a generated path therefore needs one: each generated path takes the first
observations (all channels together) of a training window drawn at random, so levels and the
relations between channels at the start (High above Low) are those of real windows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from infgan.data.files import DataError

KINDS = ("none", "log", "log_return", "relative", "diff", "high", "low", "close_ratio", "quantile")
ANCHORED = ("log_return", "relative", "diff")
POSITIVE = ("log", "log_return", "relative", "high", "low", "close_ratio")
BAR = ("high", "low", "close_ratio")  # relative to the bar's other prices
QUANTILES = 512  # per `quantile` channel: the training values' quantiles at (k + 0.5) / QUANTILES, k < QUANTILES


def fit(values: torch.Tensor, kinds: Sequence[str]) -> torch.Tensor | None:
    """The `quantile` channels' tables (channels, QUANTILES) from training values (n, time, channels),
    NaN rows for other channels; None when no channel is `quantile`. The outer knots are the training
    minimum and maximum, so that every training value inverts exactly and nothing generated leaves the range."""
    if "quantile" not in kinds:
        return None
    probs = (torch.arange(QUANTILES, dtype=torch.float64) + 0.5) / QUANTILES
    out = torch.full((len(kinds), QUANTILES), float("nan"), dtype=torch.float64)
    for c, kind in enumerate(kinds):
        if kind == "quantile":
            x = values[..., c].reshape(-1).double()
            seen = x[~torch.isnan(x)]
            out[c] = torch.quantile(seen, probs)
            out[c, 0], out[c, -1] = seen.min(), seen.max()
    return out.to(values.dtype)


def _normal_scores(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Phi^-1 of each value's probability under the table `q` (QUANTILES,): linear between knots, the
    middle of the run of knots a value equals (a repeated value), clamped to the outer knots."""
    k = q.numel()
    probs = (torch.arange(k, dtype=torch.float64) + 0.5) / k
    flat, qd = x.reshape(-1).double().contiguous(), q.double().contiguous()
    lo = torch.searchsorted(qd, flat, right=False)  # first knot >= x
    hi = torch.searchsorted(qd, flat, right=True)  # first knot > x
    a, b = (lo - 1).clamp(0, k - 1), lo.clamp(0, k - 1)
    span = (qd[b] - qd[a]).clamp_min(1e-300)
    between = probs[a] + (probs[b] - probs[a]) * ((flat - qd[a]) / span).clamp(0, 1)
    tied = probs[lo.clamp(0, k - 1)] * 0.5 + probs[(hi - 1).clamp(0, k - 1)] * 0.5
    u = torch.where(hi > lo, tied, between).clamp(probs[0], probs[-1])
    return torch.where(torch.isnan(flat), flat, torch.special.ndtri(u)).view_as(x).to(x.dtype)


def per_channel(spec: Sequence[str], names: Sequence[str], source: str) -> list[str]:
    """Each channel's transform from `data.transform`: empty (none), one kind for every channel,
    `CHANNEL=KIND` entries (the rest none), or one kind per channel in order."""
    allowed = ", ".join(KINDS)
    if not spec:
        return ["none"] * len(names)
    if all("=" in s for s in spec):
        kinds = dict.fromkeys(names, "none")
        for s in spec:
            name, kind = (p.strip() for p in s.split("=", 1))
            if name not in kinds:
                raise DataError(f"{source}: data.transform: no channel '{name}'; channels are {', '.join(names)}")
            kinds[name] = kind
        out = list(kinds.values())
    elif any("=" in s for s in spec):
        raise DataError(f"{source}: data.transform: mix of CHANNEL=KIND and bare kinds {list(spec)}; use one form")
    elif len(spec) == 1:
        out = [spec[0]] * len(names)
    elif len(spec) == len(names):
        out = list(spec)
    else:
        raise DataError(
            f"{source}: data.transform has {len(spec)} entries for {len(names)} channels ({', '.join(names)}); "
            "give one kind for all, one per channel, or CHANNEL=KIND entries"
        )
    for kind in out:
        if kind not in KINDS:
            raise DataError(f"{source}: data.transform: unknown transform '{kind}'; allowed: {allowed}")
    if any(k in ("high", "low") for k in out) and not {"Open", "Close"} <= set(names):
        raise DataError(
            f"{source}: data.transform high/low need channels named Open and Close; channels are {', '.join(names)}"
        )
    if "close_ratio" in out and ("Close" not in names or out[list(names).index("Close")] in BAR):
        raise DataError(
            f"{source}: data.transform close_ratio needs a channel named Close whose own transform is not relative "
            f"to the bar (none or log); channels are {', '.join(names)}"
        )
    return out


def _open_close(values: torch.Tensor, names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(max(Open, Close), min(Open, Close)) of every bar, (n, time)."""
    o, c = values[..., list(names).index("Open")], values[..., list(names).index("Close")]
    return torch.maximum(o, c), torch.minimum(o, c)


def first_observed(values: torch.Tensor) -> torch.Tensor:
    """(n, time, channels) -> (n, channels): each channel's first non-NaN value (NaN if none)."""
    observed = ~torch.isnan(values)
    first = observed.float().argmax(dim=1, keepdim=True)  # 0 when nothing is observed
    out = values.gather(1, first).squeeze(1)
    return torch.where(observed.any(dim=1), out, torch.full_like(out, float("nan")))


def forward(
    values: torch.Tensor, kinds: Sequence[str], names: Sequence[str], source: str, table: torch.Tensor | None = None
) -> torch.Tensor:
    """Transformed values (n, time, channels), NaN where unobserved; refuses non-positive input to a log.
    `table`: the `quantile` channels' tables from `fit` (needed when a channel is `quantile`)."""
    out = values.clone()
    anchors = first_observed(values)
    for c, kind in enumerate(kinds):
        x = values[..., c]
        if kind in POSITIVE:
            bad = int((x <= 0).sum())
            if bad:
                raise DataError(
                    f"{source}: data.transform {kind} needs positive values, but channel '{names[c]}' has {bad} "
                    "values <= 0; use none or diff for it"
                )
        a = anchors[:, c : c + 1]
        if kind == "log":
            out[..., c] = torch.log(x)
        elif kind == "log_return":
            out[..., c] = torch.log(x / a)
        elif kind == "relative":
            out[..., c] = x / a - 1
        elif kind == "diff":
            out[..., c] = x - _previous_observed(x)
        elif kind == "close_ratio":
            out[..., c] = torch.log(x / values[..., list(names).index("Close")])
        elif kind in BAR:
            top, bottom = _open_close(values, names)
            out[..., c] = torch.log(x / top) if kind == "high" else torch.log(bottom / x)
        elif kind == "quantile":
            if table is None:
                raise ValueError("a quantile transform needs the training values' table (transforms.fit)")
            out[..., c] = _normal_scores(x, table[c])
    return out


def _previous_observed(x: torch.Tensor) -> torch.Tensor:
    """(n, time): the value observed before each time (the value itself at the first observation)."""
    observed = ~torch.isnan(x)
    idx = torch.arange(x.size(1)).expand_as(x)
    last = torch.where(observed, idx, -1).cummax(dim=1).values  # last observed at or before
    before = torch.cat([torch.full_like(last[:, :1], -1), last[:, :-1]], dim=1)
    prev = torch.nan_to_num(x).gather(1, before.clamp_min(0))
    return torch.where(before >= 0, prev, x)


def inverse(
    values: torch.Tensor,
    kinds: list[str],
    anchors: torch.Tensor,
    names: list[str],
    table: torch.Tensor | None = None,
) -> torch.Tensor:
    """Values (n, time, channels) back in data units; `anchors` (n, channels): each path's level x0.

    `names` (the channel names) are needed for `high` and `low`, `table` (`fit`'s) for `quantile`:
    Phi of the value read off the channel's quantiles, linear between them. TorchScript compiles this function
    as it is (`infgan export` calls it inside the exported generator), so it keeps to what
    TorchScript reads: typed lists, no module constants, no helpers.
    """
    out = values.clone()
    for c in range(len(kinds)):
        kind, y, a = kinds[c], values[..., c], anchors[:, c : c + 1].to(values.dtype)
        if kind == "log":
            out[..., c] = torch.exp(y)
        elif kind == "log_return":
            out[..., c] = a * torch.exp(y)
        elif kind == "relative":
            out[..., c] = a * (1 + y)
        elif kind == "diff":
            out[..., c] = torch.where(torch.isnan(y), y, a + torch.nan_to_num(y).cumsum(dim=1))
        elif kind == "quantile":
            if table is None:
                raise ValueError("a quantile transform needs the training values' table (transforms.fit)")
            q = table[c].to(values.dtype)
            pos = (torch.special.ndtr(torch.nan_to_num(y)) * q.numel() - 0.5).clamp(0, q.numel() - 1)
            low = pos.floor().long().clamp(0, q.numel() - 2)
            w = pos - low.to(pos.dtype)
            out[..., c] = torch.where(torch.isnan(y), y, q[low] * (1 - w) + q[low + 1] * w)
    for c in range(len(kinds)):  # after the Close is back in data units
        if kinds[c] == "close_ratio":
            out[..., c] = out[..., names.index("Close")] * torch.exp(values[..., c])
    for c in range(len(kinds)):  # after Open and Close are back in data units
        kind = kinds[c]
        if kind == "high" or kind == "low":
            o, cl = out[..., names.index("Open")], out[..., names.index("Close")]
            y = values[..., c].abs()
            out[..., c] = (
                torch.maximum(o, cl) * torch.exp(y) if kind == "high" else torch.minimum(o, cl) * torch.exp(-y)
            )
    return out


def draw_anchors(pool: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """`n` levels (n, channels) for generated paths: rows of `pool` (training windows' first values) drawn by `seed`."""
    complete = pool[torch.isfinite(pool).all(dim=1)]
    pool = complete if complete.size(0) else torch.nan_to_num(pool)  # windows missing a whole channel: avoided
    g = torch.Generator().manual_seed(seed)
    return pool[torch.randint(0, pool.size(0), (n,), generator=g)]
