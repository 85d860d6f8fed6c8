"""A study's runs in parallel on Ray: one worker process per slot, each seeing only the
devices Ray assigned it (Ray sets `CUDA_VISIBLE_DEVICES` per worker), and training several
runs in turn so that a run does not pay the Keras import.

`--jobs N` starts a local Ray instance with N slots, bound to the loopback interface only
(nothing outside this machine can reach it, and it reaches nothing outside); `--ray
ADDRESS` joins a running cluster (`ray start` on each machine, KubeRay on Kubernetes),
whose machines must see the same run dirs and data paths. Usage reporting is off either
way, and no dashboard is started.

The driver hands each idle worker the next run. A run whose worker process died is rerun
from its last checkpoint (`planning.plan_retry`) on a fresh worker, up to `retries` times;
a run that failed on its own (a NaN, bad data) is not. A SIGINT/SIGTERM to the driver asks
every running run to checkpoint and stop (`signals.request_stop` in its worker), starts no
more, and waits for them; a second one shuts Ray down at once (the runs then resume from
their last checkpoint).
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from blogml.errors import EXIT_FAILED, EXIT_INTERRUPTED, BlogmlError
from blogml.runners.launch import Outcome, execute
from blogml.runners.planning import RunPlan, plan_retry
from blogml.runners.signals import StopSignal, clear_stop_request, request_stop

INSTALL = 'pip install -e ".[ray]"'
LOOPBACK = "127.0.0.1"
WAIT_SECONDS = 0.25  # how often the driver looks at a stop request while runs train

# Called with each run's position in the plans and its outcome, as it ends.
OnOutcome = Callable[[int, Outcome], None]


@dataclass(frozen=True)
class Parallelism:
    """How a study spreads over processes (`--jobs`, `--ray`, ...); the default: none."""

    jobs: int | None = None  # a local Ray instance with this many slots
    address: str | None = None  # or join the Ray cluster at this address
    gpus_per_run: float | None = None  # None: 1 where the cluster has GPUs, else 0
    cpus_per_run: float = 1.0
    retries: int = 1  # reruns (resumed) of a run whose worker process died

    @property
    def parallel(self) -> bool:
        return self.jobs is not None or self.address is not None


def require_ray() -> None:
    """Raise a BlogmlError that says how to install Ray when it is missing (without
    importing it: `connect` must set its environment first)."""
    if importlib.util.find_spec("ray") is None:
        raise BlogmlError(f"--jobs and --ray run on Ray, which is not installed; install it "
                          f"with: {INSTALL}")


def _import_ray(local: bool) -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if local:
        # Ray replaces a loopback node address by the machine's own interface, except where
        # it treats the machine as no cluster (this switch, read when Ray is imported, and
        # inherited by the processes it starts): a local instance then binds 127.0.0.1.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    return ray


def connect(parallelism: Parallelism) -> tuple[Any, str, int, float]:
    """Start or join Ray; (ray, a line that says which, slots, GPUs per run)."""
    local = parallelism.address is None
    ray = _import_ray(local)
    common = dict(include_dashboard=False, log_to_driver=False, namespace="blogml",
                  logging_level=logging.ERROR)
    gpus = parallelism.gpus_per_run
    if local:
        jobs = parallelism.jobs
        declared = {} if gpus is None else {"num_gpus": jobs * gpus}  # may exceed what exists
        context = ray.init(num_cpus=jobs * parallelism.cpus_per_run,
                           _node_ip_address=LOOPBACK, **declared, **common)
        addresses = {node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]}
        if addresses != {LOOPBACK}:
            ray.shutdown()
            raise BlogmlError(f"the local Ray instance listens on {', '.join(addresses)}, "
                              f"not only {LOOPBACK}; report this with `ray --version`")
        where = f"local instance at {context.address_info['gcs_address']}"
    else:
        context = ray.init(address=parallelism.address, **common)
        where = f"cluster at {context.address_info['gcs_address']}"
    resources = ray.cluster_resources()
    if gpus is None:
        gpus = 1.0 if resources.get("GPU", 0) > 0 else 0.0
    slots = int(resources.get("CPU", 0) // parallelism.cpus_per_run)
    if gpus > 0:
        slots = min(slots, int(resources.get("GPU", 0) // gpus))
    if parallelism.jobs is not None:
        slots = min(slots, parallelism.jobs)
    if slots < 1:
        ray.shutdown()
        raise BlogmlError(f"Ray has {resources.get('CPU', 0):g} CPUs and "
                          f"{resources.get('GPU', 0):g} GPUs: not enough for one run of "
                          f"{parallelism.cpus_per_run:g} CPUs and {gpus:g} GPUs "
                          "(--cpus-per-run, --gpus-per-run)")
    return ray, where, slots, gpus


class RunWorker:
    """One worker process (a Ray actor): trains the runs it is handed, one at a time."""

    def __init__(self, cwd: str) -> None:
        os.chdir(cwd)  # run dirs and data paths are relative to where the study was started

    def run(self, plan: RunPlan) -> Outcome:
        clear_stop_request()
        return execute(plan)

    def stop(self, reason: str) -> None:
        request_stop(reason)


def run_on_ray(plans: Sequence[RunPlan], parallelism: Parallelism, on_outcome: OnOutcome,
               say: Callable[[str], None], stop_on_error: bool = False) -> list[Outcome | None]:
    """Every plan's outcome in plan order, None for a run not started (see `study`)."""
    plans = list(plans)
    outcomes: list[Outcome | None] = [None] * len(plans)
    queue: collections.deque[int] = collections.deque()
    for index, plan in enumerate(plans):
        if plan.skip:  # nothing to train: no worker needed
            outcomes[index] = execute(plan)
            on_outcome(index, outcomes[index])
        else:
            queue.append(index)
    if not queue:
        return outcomes
    ray, where, slots, gpus = connect(parallelism)
    try:
        workers = min(slots, len(queue))
        say(f"Ray: {where}; {workers} workers, {parallelism.cpus_per_run:g} CPUs and "
            f"{gpus:g} GPUs per run")
        worker_class = ray.remote(RunWorker).options(
            num_cpus=parallelism.cpus_per_run, num_gpus=gpus, max_restarts=0,
            max_concurrency=2)  # `stop` reaches a worker while it trains
        driver = _Driver(ray, lambda: worker_class.remote(os.getcwd()), plans, outcomes,
                         parallelism.retries, on_outcome, say, stop_on_error)
        driver.run(queue, workers)
    finally:
        ray.shutdown()
    return outcomes


class _Driver:
    """The study's loop on the driver: hands each idle worker the next run, collects what
    ends, retries a run whose worker died, and stops them all on a stop request."""

    def __init__(self, ray: Any, start_worker: Callable[[], Any], plans: list[RunPlan],
                 outcomes: list[Outcome | None], retries: int, on_outcome: OnOutcome,
                 say: Callable[[str], None], stop_on_error: bool) -> None:
        self.ray, self.start_worker = ray, start_worker
        self.plans, self.outcomes, self.retries = plans, outcomes, retries
        self.on_outcome, self.say, self.stop_on_error = on_outcome, say, stop_on_error
        self.running: dict[Any, tuple[int, Any]] = {}  # result ref: (plan index, worker)
        self.attempts: collections.Counter[int] = collections.Counter()
        self.stopping = False

    def run(self, queue: collections.deque[int], workers: int) -> None:
        idle = [self.start_worker() for _ in range(workers)]
        with StopSignal() as stop:
            while self.running or (queue and not self.stopping):
                while idle and queue and not self.stopping:
                    index, worker = queue.popleft(), idle.pop()
                    self.running[worker.run.remote(self.plans[index])] = (index, worker)
                ready, _ = self.ray.wait(list(self.running), num_returns=1,
                                         timeout=WAIT_SECONDS)
                if stop.requested and not self.stopping:
                    self.say(f"{stop.requested}: stopping {len(self.running)} running runs at "
                             "their next step (checkpointed); run the same command again to "
                             "continue")
                    self._stop_all(stop.requested)
                for ref in ready:
                    index, worker = self.running.pop(ref)
                    worker = self._collect(ref, index, worker, queue)
                    idle.append(worker)

    def _collect(self, ref: Any, index: int, worker: Any, queue: collections.deque[int]) -> Any:
        """Record how the run ended (or queue its retry); the worker for the next run."""
        plan = self.plans[index]
        try:
            outcome = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as error:
            worker = self.start_worker()  # a fresh worker in the dead one's slot
            if self.attempts[index] < self.retries and not self.stopping:
                self.attempts[index] += 1
                self.plans[index] = plan = plan_retry(plan)
                self.say(f"{plan.run_dir}: its worker process died; retry "
                         f"{self.attempts[index]} of {self.retries}, from "
                         f"{'its last checkpoint' if plan.resume else 'step 0'}")
                queue.appendleft(index)
                return worker
            outcome = _worker_died(plan, self.attempts[index], error)
        except self.ray.exceptions.RayTaskError as error:  # a bug outside `execute`
            outcome = Outcome(plan.loaded.source, str(plan.run_dir), "failed", EXIT_FAILED,
                              message=f"its worker raised: {_first_line(error)}")
        self.outcomes[index] = outcome
        self.on_outcome(index, outcome)
        if outcome.ends_study(self.stop_on_error) and not self.stopping:
            if outcome.exit_code == EXIT_INTERRUPTED:  # a stop of one run stops them all
                self._stop_all(f"the stop of {plan.run_dir}")
            self.stopping = True  # else no more starts; the running ones finish
        return worker

    def _stop_all(self, reason: str) -> None:
        self.stopping = True
        for _, worker in self.running.values():
            worker.stop.remote(reason)


def _worker_died(plan: RunPlan, attempts: int, error: Exception) -> Outcome:
    retried = f" (retried {attempts} times)" if attempts else ""
    return Outcome(plan.loaded.source, str(plan.run_dir), "failed", EXIT_FAILED,
                   message=f"its worker process died{retried}: {_first_line(error)}; "
                           "resume it with --resume")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
