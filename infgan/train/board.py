"""TensorBoard logs of a run (`eval.tensorboard`): `<run>/tensorboard/`, torch's own SummaryWriter.

At each evaluation: every numeric entry of the record (`val/score`, its parts, the floors, the
path-level metrics when computed, the training diagnostics) as a scalar at the record's step, and
the real-vs-generated sample figure as an image. `tensorboard --logdir RUN` shows one run;
`tensorboard --logdir SWEEP_DIR` finds every trial's `tensorboard/` below it and shows them side
by side. A resumed run purges what the interrupted one logged after the step it resumes from, as
`metrics.jsonl` is cut there, so the curves have no doubled segment.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

SKIPPED = ("step", "time/unix")  # the x-axis itself, and a clock reading that is not a curve
SAMPLES_TAG = "samples/real_vs_generated"


class Board:
    """A SummaryWriter for one run, or nothing when off (`enabled` False: every call is a no-op)."""

    def __init__(self, run_root: Path, enabled: bool, resumed_at: int | None = None):
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            # Events from after the checkpoint are dropped (its own step's evaluation is kept, as in metrics.jsonl).
            purge = None if resumed_at is None else resumed_at + 1
            self.writer = SummaryWriter(str(Path(run_root) / "tensorboard"), purge_step=purge)

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def log(self, record: dict[str, Any], image: np.ndarray | None = None) -> None:
        """Scalars of `record` at `record["step"]`, and `image` (RGB, (H, W, 3)) as the sample figure."""
        if self.writer is None:
            return
        step = int(record["step"])
        for key, value in record.items():
            if key in SKIPPED or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                self.writer.add_scalar(key, value, step)
        if image is not None:
            self.writer.add_image(SAMPLES_TAG, image, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
