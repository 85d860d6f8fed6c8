"""Running the planned runs of a study: one after another in this process, or in parallel
on Ray workers (`runners.ray_study`) with one device set each.

Either way a run is `launch.execute(plan)` on its own run dir, which stays the truth: a
run in parallel takes the same lock, writes the same files and resumes the same way as
alone, so the same command continues a study however it was stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from blogml.config.loader import LoadedConfig
from blogml.errors import BlogmlError
from blogml.runners import ray_study
from blogml.runners.launch import Outcome, execute
from blogml.runners.planning import RunPlan
from blogml.runners.ray_study import OnOutcome, Parallelism


def check_parallel(configs: Sequence[LoadedConfig], parallelism: Parallelism) -> None:
    """Refuse, before any run is planned, what cannot run in parallel."""
    if not parallelism.parallel:
        return
    ray_study.require_ray()
    spread = [str(c.source) for c in configs
              if c.values["distribution"]["strategy"] == "multi_worker"]
    if spread:
        raise BlogmlError(f"{', '.join(spread)}: distribution.strategy multi_worker starts its "
                          "own worker processes; train it without --jobs/--ray")


def run_study(plans: Sequence[RunPlan], parallelism: Parallelism, on_outcome: OnOutcome,
              say: Callable[[str], None], stop_on_error: bool = False) -> list[Outcome | None]:
    """Every plan's outcome, in plan order; None for a run that was not started (the study
    was stopped, or a run failed under `stop_on_error`)."""
    if parallelism.parallel:
        return ray_study.run_on_ray(plans, parallelism, on_outcome, say, stop_on_error)
    return run_here(plans, on_outcome, stop_on_error)


def run_here(plans: Sequence[RunPlan], on_outcome: OnOutcome,
             stop_on_error: bool = False) -> list[Outcome | None]:
    """One run after another in this process; an interrupted run stops the study."""
    outcomes: list[Outcome | None] = [None] * len(plans)
    for index, plan in enumerate(plans):
        outcome = outcomes[index] = execute(plan)
        on_outcome(index, outcome)
        if outcome.ends_study(stop_on_error):
            break
    return outcomes
