"""The seed's pictures of a trained CSN on one sinusoid task (``cli.py plot-shifts`` writes them
into the run folder's ``plots/``, where ``report`` finds them).

(1) ground truth, support points, prediction before and after shifting, on x in [-5, 5)
step 0.2; (2) the network on every point with the single shift read for one query
(x = -3, 0, 3), each curve crossing the final prediction at its own x; (3) all together.
"""

from __future__ import annotations

import torch

from bench.interface.method import Batch

READ_POINTS = (-3.0, 0.0, 3.0)


def shift_curves(method, episode: Batch) -> dict:
    """Curves of one sinusoid task (its support points, ``amplitude`` and ``phase``): x grid,
    truth, support, before/after shifting, one curve per read point."""
    amp, phase = float(episode.extras["amplitude"][0]), float(episode.extras["phase"][0])
    grid = torch.arange(-5.0, 5.0, 0.2)
    support_x = episode.support_x[:1].float().cpu()
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


def shift_figures(method, episode: Batch, name: str) -> dict:
    """A trained CSN's shifts on one sinusoid task (``name`` says which): the figures by file stem."""
    c = shift_curves(method, episode)
    label = f"A = {c['amplitude']:.2f}, phase = {c['phase']:.2f}, {name}"
    figures = {}

    fig, ax = _axes(f"CSN on one sinusoid task: before and after shifting\n{label}")
    _base(ax, c)
    _legend(ax)
    figures["shift_before_after"] = fig

    colours = dict(zip(READ_POINTS, ("tab:blue", "tab:green", "tab:purple")))
    for x0 in READ_POINTS:
        fig, ax = _axes(f"The shift read at x = {x0:g} applied to every point\n{label}")
        _base(ax, c, before=False)
        ax.plot(c["x"], c["reads"][x0], color=colours[x0], label=f"shift read at x = {x0:g}")
        ax.axvline(x0, color=colours[x0], ls=":")
        _legend(ax)
        figures[f"shift_read_at_{x0:+g}"] = fig

    fig, ax = _axes(f"All shifts together\n{label}")
    _base(ax, c)
    for x0 in READ_POINTS:
        ax.plot(c["x"], c["reads"][x0], color=colours[x0], lw=1, label=f"shift read at x = {x0:g}")
        ax.axvline(x0, color=colours[x0], ls=":")
    _legend(ax)
    figures["shifts_all"] = fig
    return figures


def _legend(ax) -> None:
    """Beside the axes: inside, it hides the curves wherever the task puts them."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


