"""``cli.py plot-shifts``: the seed's pictures of a trained CSN on one sinusoid task, drawn into
the run folder's ``plots/`` (``report`` copies them from there).

(1) ground truth, support points, prediction before and after shifting, on x in [-5, 5)
step 0.2; (2) the network on every point with the single shift read for one query
(x = -3, 0, 3), each curve crossing the final prediction at its own x; (3) all together.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench.data.episodes import PyRandomStream, derive_seed
from bench.data.sinusoid import SinusoidSource
from bench.engine.runconfig import RunConfig
from bench.errors import UserError
from bench.files import write_figure
from bench.interface.method import Batch, Method

READ_POINTS = (-3.0, 0.0, 3.0)


def shift_curves(method, task_seed: int, shots: int) -> dict:
    """Curves of one task: x grid, truth, support, before/after shifting, one curve per read point."""
    episode = SinusoidSource().sample(0, shots, 1, PyRandomStream(derive_seed("plot-shifts", task_seed)))
    amp, phase, xs = episode.payload
    grid = torch.arange(-5.0, 5.0, 0.2)
    support_x = torch.tensor(xs[:shots]).view(1, shots, 1)
    truth = amp * torch.sin(grid - phase)
    batch = Batch(support_x, amp * torch.sin(support_x - phase), grid.view(1, -1, 1), truth.view(1, -1, 1), 0)
    method.eval()
    with torch.no_grad():
        curves = {
            "x": grid, "truth": truth, "support_x": support_x.flatten(), "support_y": batch.support_y.flatten(),
            "before": method.unadapted(batch).flatten(), "after": method(batch).flatten(), "reads": {},
        }
        for x0 in READ_POINTS:
            curves["reads"][x0] = method(batch, read_x=torch.tensor([[[x0]]])).flatten()
    curves["amplitude"], curves["phase"] = amp, phase
    return curves


def _axes(title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.set_title(title)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return fig, ax


def _base(ax, c: dict, before: bool = True) -> None:
    ax.plot(c["x"], c["truth"], color="black", lw=1.5, label="ground truth")
    ax.scatter(c["support_x"], c["support_y"], color="black", marker="^", zorder=5, label="support points")
    if before:
        ax.plot(c["x"], c["before"], color="tab:gray", ls="--", label="before shift")
    ax.plot(c["x"], c["after"], color="tab:red", lw=2, label="after shift (each point its own read)")


def check_run(config: RunConfig) -> None:
    """Shift pictures exist for CSN runs on sinusoid tasks only."""
    if config.method != "csn" or config.task_spec.kind != "regression":
        raise UserError(f"plot-shifts needs a CSN run on a sinusoid task, not {config.method} on {config.task}")


def write_shift_plots(method: Method, shots: int, out: Path, task_seed: int) -> list[Path]:
    """Draws a trained CSN's shifts on sinusoid task ``task_seed`` as PNGs into ``out``."""
    c = shift_curves(method, task_seed, shots)
    label = f"A = {c['amplitude']:.2f}, phase = {c['phase']:.2f}, task seed {task_seed}"
    paths = []

    fig, ax = _axes(f"CSN on one sinusoid task: before and after shifting\n{label}")
    _base(ax, c)
    _legend(ax)
    paths.append(write_figure(fig, out / "shift_before_after.png"))

    colours = dict(zip(READ_POINTS, ("tab:blue", "tab:green", "tab:purple")))
    for x0 in READ_POINTS:
        fig, ax = _axes(f"The shift read at x = {x0:g} applied to every point\n{label}")
        _base(ax, c, before=False)
        ax.plot(c["x"], c["reads"][x0], color=colours[x0], label=f"shift read at x = {x0:g}")
        ax.axvline(x0, color=colours[x0], ls=":")
        _legend(ax)
        paths.append(write_figure(fig, out / f"shift_read_at_{x0:+g}.png"))

    fig, ax = _axes(f"All shifts together\n{label}")
    _base(ax, c)
    for x0 in READ_POINTS:
        ax.plot(c["x"], c["reads"][x0], color=colours[x0], lw=1, label=f"shift read at x = {x0:g}")
        ax.axvline(x0, color=colours[x0], ls=":")
    _legend(ax)
    paths.append(write_figure(fig, out / "shifts_all.png"))
    return paths


def _legend(ax) -> None:
    """Beside the axes: inside, it hides the curves wherever the task puts them."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


