"""Curves of a bench, per problem: one line per optimizer (median over seeds), min–max band.

`<problem>_loss_vs_step.png`, `<problem>_loss_vs_time.png` (training loss) and
`<problem>_<metric>.png` (the monitored evaluation metric), under the bench's `plots/`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blogml.comparison.grid import Bench
from blogml.comparison.results import series
from blogml.comparison.schema import optimizers_of

Curve = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x, median, low, high


def seed_band(runs: list[tuple[list[int], list[float], list[float]]],
              against_time: bool) -> Curve | None:
    """Median and min–max over seeds at the steps every seed logged.

    Against time, a point's x is the median over seeds of the wall time at that step.
    """
    runs = [run for run in runs if run[0]]
    if not runs:
        return None
    common = sorted(set.intersection(*(set(steps) for steps, _, _ in runs)))
    if not common:
        return None
    values, times = [], []
    for steps, ys, ts in runs:
        where = {step: i for i, step in enumerate(steps)}
        values.append([ys[where[s]] for s in common])
        times.append([ts[where[s]] for s in common])
    values = np.asarray(values, float)
    x = np.median(np.asarray(times, float), axis=0) if against_time else np.asarray(common, float)
    return x, np.median(values, axis=0), values.min(axis=0), values.max(axis=0)


def _draw(bench: Bench, problem: str, metric: str, against_time: bool, title: str,
          ylabel: str, path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {}
    for optimizer in optimizers_of(bench.values, problem):
        runs = [series(cell.run_dir, metric) for cell in bench.cells_of(problem, optimizer)]
        curve = seed_band(runs, against_time)
        if curve is not None:
            curves[optimizer] = curve
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    colours = plt.get_cmap("tab10")
    for i, (optimizer, (x, median, low, high)) in enumerate(curves.items()):
        colour = colours(i % 10)
        ax.plot(x, median, color=colour, linewidth=1.6, label=optimizer,
                marker="o" if len(x) < 12 else None, markersize=3)
        ax.fill_between(x, low, high, color=colour, alpha=0.18, linewidth=0)
    everything = np.concatenate([np.concatenate([low, high]) for _, _, low, high in
                                 curves.values()])
    # A loss spanning decades reads better on a log axis.
    if np.all(everything > 0) and everything.max() / everything.min() > 20:
        ax.set_yscale("log")
    seeds = len(bench.values["seeds"])
    ax.set_title(f"{problem}: {title}\n(median over {seeds} seeds, band: min–max)"
                 if seeds > 1 else f"{problem}: {title}", fontsize=10)
    ax.set_xlabel("wall time (s)" if against_time else "step (batches)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_bench(bench: Bench) -> dict[str, list[Path]]:
    """Every problem's curves; problem -> the PNGs written."""
    folder = bench.out_dir / "plots"
    written: dict[str, list[Path]] = {}
    for problem, entry in bench.values["problems"].items():
        metric = entry["train"]["monitor"]
        plots = [
            _draw(bench, problem, "loss", False, "training loss vs step", "training loss",
                  folder / f"{problem}_loss_vs_step.png"),
            _draw(bench, problem, "loss", True, "training loss vs wall time", "training loss",
                  folder / f"{problem}_loss_vs_time.png"),
            _draw(bench, problem, metric, False, f"{metric} vs step", metric,
                  folder / f"{problem}_{metric}.png"),
        ]
        written[problem] = [plot for plot in plots if plot is not None]
    return written
