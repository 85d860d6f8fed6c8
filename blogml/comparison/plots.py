"""Curves of a bench, per problem: one line per optimizer (median over seeds), min–max band.

`<problem>_loss_vs_step.png`, `<problem>_loss_vs_time.png` (training loss) and
`<problem>_<metric>.png` (the monitored evaluation metric) of the default runs,
`<problem>_lr_sensitivity.png` (the final metric of each tuning trial against its learning
rate, DeepOBS's plot) and `profiles.png` (the performance profiles), under `plots/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    plt = _pyplot()

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
    return _save(fig, plt, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def lr_sensitivity(bench: Bench, problem: str, rows: list[dict[str, Any]],
                   path: Path) -> Path | None:
    """The final monitored metric of every tuning trial against its learning rate (mean
    over the tuning seeds), one line per tuned optimizer; each default as a hollow mark."""
    metric = bench.problem(problem)["train"]["monitor"]
    lines: dict[str, list[tuple[float, float]]] = {}
    for optimizer in optimizers_of(bench.values, problem):
        trials: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            if row["optimizer"] == optimizer and row["variant"] == "trial":
                trials.setdefault(row["trial"], []).append(row)
        points = []
        for group in trials.values():
            values = [r["final_metric"] for r in group if r["final_metric"] is not None]
            if values:
                points.append((group[0]["learning_rate"], float(np.mean(values))))
        if points:
            lines[optimizer] = sorted(points)
    if not lines:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    colours = plt.get_cmap("tab10")
    for i, (optimizer, points) in enumerate(lines.items()):
        x, y = zip(*points)
        ax.plot(x, y, color=colours(i % 10), marker="o", markersize=4, linewidth=1.4,
                label=optimizer)
        defaults = [r for r in rows if r["optimizer"] == optimizer and r["variant"] == "default"
                    and r["final_metric"] is not None]
        if defaults:
            ax.plot([defaults[0]["learning_rate"]],
                    [float(np.mean([r["final_metric"] for r in defaults]))], linestyle="none",
                    marker="o", markersize=8, markerfacecolor="none", color=colours(i % 10))
    ax.set_xscale("log")
    values = [v for points in lines.values() for _, v in points]
    if min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")
    ax.set_title(f"{problem}: final {metric} against the learning rate\n(dots: tuning trials, "
                 "mean over tuning seeds; rings: the default setting, mean over seeds)",
                 fontsize=10)
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"final {metric}")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, plt, path)


def plot_profiles(profiles: dict[str, dict[str, list[tuple[float, float]]]],
                  path: Path) -> Path | None:
    """Performance profiles, one panel per variant (default, tuned): ρ(τ) per optimizer."""
    if not profiles:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(profiles), figsize=(6.0 * len(profiles), 4.2), dpi=110,
                             squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, (variant, curves) in zip(axes[0], profiles.items()):
        for i, (optimizer, curve) in enumerate(curves.items()):
            taus, rho = zip(*curve)
            ax.step(taus, rho, where="post", color=colours(i % 10), linewidth=1.6,
                    label=optimizer)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("τ (time to target ÷ the fastest optimizer's)")
        ax.set_ylabel("fraction of problems within τ")
        ax.set_title(f"performance profiles: {variant} settings", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_bench(bench: Bench, rows: list[dict[str, Any]]) -> dict[str, list[Path]]:
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
            lr_sensitivity(bench, problem, [r for r in rows if r["problem"] == problem],
                           folder / f"{problem}_lr_sensitivity.png"),
        ]
        written[problem] = [plot for plot in plots if plot is not None]
    return written
