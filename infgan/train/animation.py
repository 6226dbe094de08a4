"""Generated samples over training, animated: `plots/samples.gif`.

At each evaluation the evaluator's generated paths (the same fixed noise every time) give one
frame: its first `FRAME_PATHS` paths in data units, kept in `samples_frames.npz` beside the
metrics, so a resumed run keeps the frames before it. Nothing is generated for the animation.
`eval.gif_frames` caps the frames kept: past it every other older frame is dropped, so a long run
keeps frames spread over all of training and the file stays small. At the end of a run the frames
become the gif: real held-out paths on the left (fixed), generated ones on the right, one frame per
evaluation.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from infgan.atomic import atomic_write
from infgan.plots import FAKE, REAL, spread

FRAME_PATHS = 16  # generated paths drawn in each frame
FPS = 4


class SampleFrames:
    """Frames (step, generated paths in data units) of one run, kept on disk at `path`."""

    def __init__(self, path: Path, cap: int):
        self.path, self.cap = Path(path), cap
        self.steps: list[int] = []
        self.frames: list[np.ndarray] = []  # each (FRAME_PATHS, time, 1 + channels)

    def load(self, up_to_step: int) -> None:
        """The frames saved before, up to `up_to_step` (a resumed run drops later ones, as it drops
        later metrics); nothing when there is no file or it cannot be read."""
        try:
            with np.load(self.path) as f:
                steps, frames = f["steps"].tolist(), list(f["frames"])
        except (OSError, KeyError, ValueError):
            return
        kept = [i for i, s in enumerate(steps) if s <= up_to_step]
        self.steps, self.frames = [steps[i] for i in kept], [frames[i] for i in kept]

    def add(self, step: int, paths: torch.Tensor) -> None:
        """One evaluation's generated paths (n, time, 1 + channels), data units; saved at once."""
        if self.cap <= 0:
            return
        self.steps.append(step)
        self.frames.append(paths[:FRAME_PATHS].float().numpy())
        while len(self.frames) > self.cap:  # drop every other older frame, keep the newest
            keep = list(range(0, len(self.frames) - 1, 2)) + [len(self.frames) - 1]
            self.steps = [self.steps[i] for i in keep]
            self.frames = [self.frames[i] for i in keep]
        buf = io.BytesIO()
        np.savez(buf, steps=np.array(self.steps), frames=np.stack(self.frames))
        atomic_write(self.path, lambda fh: fh.write(buf.getvalue()))

    def write_gif(
        self, real: torch.Tensor, path: Path, names: Sequence[str], time_unit: str, canvas: FrameCanvas | None = None
    ) -> Path | None:
        """The animation, or None with no frame (or `eval.gif_frames: 0`). `canvas`: the run's own
        (its real panel already drawn from `real`), else one is made for it."""
        if not self.frames or self.cap <= 0:
            return None
        return write_gif(self.steps, self.frames, canvas or FrameCanvas(real, names, time_unit), path)


class FrameCanvas:
    """One figure whose generated lines are redrawn for each frame: real held-out paths (fixed) on
    the left, a frame's generated paths on the right, y-limits from the real paths. The fixed part
    is drawn once and kept as a bitmap; a frame redraws only its own lines on it (about 10 ms), so
    the per-evaluation TensorBoard image and the gif's frames both come from here cheaply."""

    def __init__(self, real: torch.Tensor, names: Sequence[str], time_unit: str):
        channels = len(names)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        # A figure of its own, not pyplot's: nothing to close, and it lives as long as the run that draws on it.
        self.fig = Figure(figsize=(8, 2.1 * channels + 0.5))
        axes = self.fig.subplots(channels, 2, squeeze=False, sharey="row")
        self.lines: list[list] = []
        times = real[..., 0].numpy()
        for c in range(channels):
            for p in real[spread(real.size(0), FRAME_PATHS)]:
                t, y = p[:, 0].numpy(), p[:, c + 1].numpy()
                seen = ~np.isnan(y)
                axes[c, 0].plot(t[seen], y[seen], color=REAL, alpha=0.5, lw=0.8)
            axes[c, 0].set_title(f"{names[c]}: real (held out)", fontsize=9)
            axes[c, 1].set_title(f"{names[c]}: generated", fontsize=9)
            self.lines.append(
                [axes[c, 1].plot([], [], color=FAKE, alpha=0.6, lw=0.8, animated=True)[0] for _ in range(FRAME_PATHS)]
            )
            axes[c, 1].set_xlim(float(np.nanmin(times)), float(np.nanmax(times)))
            values = real[..., c + 1].numpy()
            values = values[np.isfinite(values)]
            if len(values):  # generated paths beyond the real range run off the panel, as they should show
                lo, hi = float(values.min()), float(values.max())
                pad = 0.25 * (hi - lo or 1.0)
                axes[c, 1].set_ylim(lo - pad, hi + pad)
            for ax in axes[c]:
                ax.set_xlabel(f"time ({time_unit})", fontsize=8)
                ax.tick_params(labelsize=7)
        self.axes = axes
        self.title = self.fig.suptitle(" ", animated=True)
        self.fig.tight_layout()
        self.canvas = FigureCanvasAgg(self.fig)
        self.canvas.draw()  # the fixed part, once
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def render(self, step: int, paths: np.ndarray) -> np.ndarray:
        """The figure with `paths` (up to FRAME_PATHS, time, 1 + channels) as generated: RGB (H, W, 3) uint8."""
        canvas = self.canvas
        canvas.restore_region(self.background)
        for c, row in enumerate(self.lines):
            for i, line in enumerate(row):
                if i < len(paths):
                    line.set_data(paths[i, :, 0], paths[i, :, c + 1])
                else:
                    line.set_data([], [])
                self.axes[c, 1].draw_artist(line)
        self.title.set_text(f"step {step}")
        self.fig.draw_artist(self.title)
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def write_gif(steps: Sequence[int], frames: Sequence[np.ndarray], canvas: FrameCanvas, path: Path) -> Path:
    """Each frame's generated paths drawn on `canvas` beside its real ones; one frame per step, `FPS` a second."""
    from PIL import Image

    images = [
        Image.fromarray(canvas.render(step, frame)).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
        for step, frame in zip(steps, frames)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=1000 // FPS, loop=0)
    tmp.replace(path)
    return path
