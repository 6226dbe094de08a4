"""Sample-quality metrics that do not depend on any trial's critic (see docs/metrics.md), between a
fixed held-out set of real paths and generated paths from fixed noise, in normalised units:

- `marginal`: `val/score` = marginal W1 + marginal KS + lag-covariance error (every evaluation);
- `discriminative`: `val/disc`, a post-hoc classifier's |accuracy - 0.5|;
- `predictive`: `val/pred` (train on synthetic, test on real) and `val/pred_ratio` (over real-trained);
- `signature`: `val/sig_mmd`, the signature-kernel MMD;
- `floors`: each metric between two real sets (`val/..._floor`), the value a perfect generator gets.

`sequence` holds what the path-level metrics share; `path_level` runs them together.
"""

from infgan.metrics.marginal import generate, lags, per_condition, quality_metrics
from infgan.metrics.path_level import path_metrics
from infgan.objective import PATH_METRICS

__all__ = ["PATH_METRICS", "generate", "lags", "path_metrics", "per_condition", "quality_metrics"]
