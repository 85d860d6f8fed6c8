"""Curves of a run's metrics, from metrics.jsonl to `plots/<metric>.png`."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

# Fields of an event that are bookkeeping, not curves.
NOT_PLOTTED = {"event", "step", "epoch", "time", "steps_per_sec"}


def _series(events: list[dict[str, Any]]) -> dict[str, dict[str, tuple[list, list]]]:
    """metric -> event kind (train, val, ...) -> (steps, values)."""
    series: dict[str, dict[str, tuple[list, list]]] = defaultdict(dict)
    for event in events:
        for name, value in event.items():
            if name in NOT_PLOTTED or not isinstance(value, (int, float)):
                continue
            steps, values = series[name].setdefault(event["event"], ([], []))
            steps.append(event["step"])
            values.append(value)
    return series


def plot_curves(events: list[dict[str, Any]], out_dir: Path, title: str = "") -> list[Path]:
    """One PNG per metric: train curve and validation points against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, by_kind in sorted(_series(events).items()):
        if name == "lr" and len({v for _, values in by_kind.values() for v in values}) < 2:
            continue  # a constant learning rate is no curve worth a file
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        positive = True
        spread = []
        for kind, (steps, values) in sorted(by_kind.items(), key=lambda kv: kv[0] != "train"):
            style = {"marker": "o", "markersize": 4} if kind != "train" else {"linewidth": 1.2}
            ax.plot(steps, values, label=kind, **style)
            positive = positive and min(values) > 0
            spread.extend(values)
        # Losses spanning decades read better on a log axis.
        if name != "lr" and positive and max(spread) / min(spread) > 20:
            ax.set_yscale("log")
        ax.set_xlabel("step (updates applied)")
        ax.set_ylabel(name)
        ax.set_title(f"{title}: {name}" if title else name)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
