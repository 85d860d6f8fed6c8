"""Time to target and performance profiles (AlgoPerf's method; Dolan and Moré 2002).

A problem's target is a validation metric and a value (`target: {metric: val_accuracy,
value: 0.9}`); a run reaches it at its first validation at or beyond the value (at or
below for a metric that is minimised). Its time to target is that validation's step and
the run's wall-clock seconds then (evaluations included: every optimizer of a problem is
evaluated as often).

The performance profile of optimizer o is, for τ ≥ 1, the fraction of problems on which
o's time is within τ times the fastest optimizer's on that problem:

    ρ_o(τ) = |{p : t(p, o) ≤ τ · min_o' t(p, o')}| / |problems|

A run that never reaches its target counts as infinitely slow, so it is within no τ; a
problem no optimizer solves counts against all of them. One score per optimizer is the
area under its profile from τ = 1 to τ_max, divided by τ_max − 1: 1 means the fastest on
every problem, 0 never within τ_max of it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

INFINITE = math.inf


def reached(value: float, target: float, mode: str) -> bool:
    return value <= target if mode == "min" else value >= target


def time_to_target(evaluations: Sequence[Mapping[str, Any]], metric: str, target: float,
                   mode: str) -> tuple[int | None, float | None]:
    """(step, seconds) of the first evaluation whose `metric` (without its `val_` prefix, as
    metrics.jsonl holds it) reaches `target`; (None, None) if none does."""
    name = metric.removeprefix("val_")
    for event in evaluations:
        value = event.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value) and reached(value, target, mode):
            return event["step"], event.get("time")
    return None, None


def ratios(times: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """{problem: {optimizer: t / fastest t}}; infinite where the optimizer did not reach the
    target, or where no optimizer did."""
    result = {}
    for problem, by_optimizer in times.items():
        fastest = min(by_optimizer.values(), default=INFINITE)
        result[problem] = {o: (t / fastest if math.isfinite(t) and fastest > 0 else
                               (1.0 if t == fastest == 0 else INFINITE))
                           for o, t in by_optimizer.items()}
    return result


def profile(times: Mapping[str, Mapping[str, float]], optimizer: str, tau: float) -> float:
    """ρ_optimizer(τ): the fraction of problems solved within τ × the fastest's time."""
    by_problem = ratios(times)
    if not by_problem:
        return 0.0
    within = sum(1 for r in by_problem.values() if r.get(optimizer, INFINITE) <= tau)
    return within / len(by_problem)


def area(times: Mapping[str, Mapping[str, float]], optimizer: str, tau_max: float = 4.0) -> float:
    """The area under ρ_optimizer from τ = 1 to `tau_max`, over `tau_max` − 1 (exact: ρ is a
    step function that rises at each problem's ratio)."""
    by_problem = ratios(times)
    if not by_problem:
        return 0.0
    total = 0.0
    for r in by_problem.values():
        ratio = r.get(optimizer, INFINITE)
        if ratio <= tau_max:  # counted from τ = ratio on
            total += tau_max - max(ratio, 1.0)
    return total / (len(by_problem) * (tau_max - 1.0))


def times_of(rows: Sequence[Mapping[str, Any]], variant: str) -> dict[str, dict[str, float]]:
    """{problem: {optimizer: median over seeds of seconds to target}} of one variant's rows
    (results.csv's), infinite for a seed that never reached it; problems without a target
    are left out."""
    grouped: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        if row["variant"] != variant or row["target_metric"] is None:
            continue
        seconds = row["seconds_to_target"]
        grouped.setdefault(row["problem"], {}).setdefault(row["optimizer"], []).append(
            INFINITE if seconds is None else float(seconds))
    return {problem: {o: statistics.median(t) for o, t in by_optimizer.items()}
            for problem, by_optimizer in grouped.items()}


def timed(times: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The optimizers of a table of times, in first-seen order."""
    return list(dict.fromkeys(o for by_optimizer in times.values() for o in by_optimizer))


def curves(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """{variant: {optimizer: its profile curve}} for the default and tuned rows that have
    a target (a variant without any is left out)."""
    tables = {variant: times_of(rows, variant) for variant in ("default", "tuned")}
    return {variant: {o: curve(times, o) for o in timed(times)}
            for variant, times in tables.items() if times}


def curve(times: Mapping[str, Mapping[str, float]], optimizer: str,
          tau_max: float = 4.0) -> list[tuple[float, float]]:
    """(τ, ρ(τ)) at τ = 1, each ratio where ρ steps up, and `tau_max`: enough to draw it."""
    steps = sorted({1.0, tau_max, *(r[optimizer] for r in ratios(times).values()
                                    if optimizer in r and 1.0 <= r[optimizer] <= tau_max)})
    return [(tau, profile(times, optimizer, tau)) for tau in steps]
