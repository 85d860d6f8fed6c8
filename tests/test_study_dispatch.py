"""The parallel study's driver loop (`runners.ray_study`) against a stand-in for Ray whose
workers follow a script: retries, exhausted retries, a crash outside a run, a failed run
under --stop-on-error, a stop, and finished runs that need no worker. The real Ray is in
tests/test_parallel_study.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from blogml.config.loader import LoadedConfig
from blogml.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from blogml.runners import ray_study
from blogml.runners.launch import Outcome
from blogml.runners.planning import RunPlan
from blogml.runners.rundir import RunDir


class ActorDied(Exception):
    pass


class TaskFailed(Exception):
    pass


class FakeRay:
    """Workers that end each run at once as `script[run dir]` says, attempt by attempt:
    "ok", "failed", "interrupted", "die" (the worker process dies) or "raise"."""

    exceptions = SimpleNamespace(RayActorError=ActorDied, RayTaskError=TaskFailed)

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.started_workers, self.calls, self.stops, self.shut_down = 0, [], [], False

    def remote(self, cls):
        fake = self

        class Options:
            def options(self, **kwargs):
                return self

            def remote(self, cwd):
                fake.started_workers += 1
                return Worker(fake, fake.started_workers)

        return Options()

    def wait(self, refs, num_returns, timeout):
        return refs[:1], refs[1:]

    def get(self, ref):
        action, plan = ref.action, ref.plan
        if action == "die":
            raise ActorDied("The actor died unexpectedly before finishing this task.")
        if action == "raise":
            raise TaskFailed("ImportError: no module named keras\n  more lines")
        code = {"ok": EXIT_OK, "failed": EXIT_FAILED, "interrupted": EXIT_INTERRUPTED}[action]
        return Outcome(plan.loaded.source, str(plan.run_dir),
                       {"ok": "finished"}.get(action, action), code)

    def shutdown(self):
        self.shut_down = True


class Ref(SimpleNamespace):
    __hash__ = object.__hash__  # a result ref: a key of the driver's running runs


class Worker:
    def __init__(self, fake: FakeRay, number: int) -> None:
        self.fake, self.number = fake, number
        self.run = SimpleNamespace(remote=self._run)
        self.stop = SimpleNamespace(remote=lambda reason: fake.stops.append((number, reason)))

    def _run(self, plan):
        self.fake.calls.append((self.number, str(plan.run_dir), plan.resume))
        return Ref(action=self.fake.script[str(plan.run_dir)].pop(0), plan=plan)


def _plans(tmp_path: Path, names: str, skip: str = "") -> list[RunPlan]:
    return [RunPlan(LoadedConfig(f"{n}.yaml", {}), RunDir(tmp_path / n), resume=False,
                    skip="already finished" if n in skip else "") for n in names]


def _drive(monkeypatch, tmp_path, script, names, retries=1, stop_on_error=False, skip=""):
    fake = FakeRay({str(tmp_path / k): v for k, v in script.items()})
    connected = []
    monkeypatch.setattr(ray_study, "connect",
                        lambda p: connected.append(p) or (fake, "fake", 2, 0.0))
    monkeypatch.setattr(ray_study, "execute",
                        lambda plan: Outcome(plan.loaded.source, str(plan.run_dir),
                                             f"skipped ({plan.skip})", EXIT_OK))
    said, ended = [], []
    outcomes = ray_study.run_on_ray(
        _plans(tmp_path, names, skip), ray_study.Parallelism(jobs=2, retries=retries),
        lambda i, o: ended.append((i, o.status)), said.append, stop_on_error)
    assert fake.shut_down == bool(connected)  # Ray stopped again if it was started
    return fake, outcomes, said, ended


def test_a_dead_worker_is_replaced_and_its_run_retried_from_its_checkpoint(tmp_path,
                                                                          monkeypatch):
    (tmp_path / "b/checkpoints/last").mkdir(parents=True)
    (tmp_path / "b/checkpoints/last/checkpoint.h5").write_bytes(b"")
    fake, outcomes, said, ended = _drive(monkeypatch, tmp_path,
                                         {"a": ["ok"], "b": ["die", "ok"], "c": ["ok"]}, "abc")
    assert [o.status for o in outcomes] == ["finished"] * 3
    assert fake.started_workers == 3  # two, and one in place of the dead one
    b = str(tmp_path / "b")
    assert [call for call in fake.calls if call[1] == b] == [(1, b, False), (3, b, True)]
    assert said[1] == f"{tmp_path / 'b'}: its worker process died; retry 1 of 1, from its " \
                      "last checkpoint"
    assert sorted(ended) == [(0, "finished"), (1, "finished"), (2, "finished")]


def test_exhausted_retries_fail_the_run_alone(tmp_path, monkeypatch):
    fake, outcomes, said, _ = _drive(monkeypatch, tmp_path,
                                     {"a": ["die", "die"], "b": ["ok"], "c": ["ok"]}, "abc")
    assert [o.exit_code for o in outcomes] == [EXIT_FAILED, EXIT_OK, EXIT_OK]
    assert outcomes[0].message == ("its worker process died (retried 1 times): The actor died "
                                   "unexpectedly before finishing this task.; resume it with "
                                   "--resume")
    assert "from step 0" in said[1]  # no checkpoint yet


def test_no_retries_and_a_crash_outside_the_run(tmp_path, monkeypatch):
    _, outcomes, _, _ = _drive(monkeypatch, tmp_path, {"a": ["die"], "b": ["raise"]}, "ab",
                               retries=0)
    assert outcomes[0].message.startswith("its worker process died: The actor died")
    assert (outcomes[1].status, outcomes[1].message) == (
        "failed", "its worker raised: ImportError: no module named keras")


def test_stop_on_error_starts_no_more_but_lets_the_running_finish(tmp_path, monkeypatch):
    fake, outcomes, _, _ = _drive(monkeypatch, tmp_path,
                                  {"a": ["failed"], "b": ["ok"], "c": ["ok"]}, "abc",
                                  stop_on_error=True)
    assert [None if o is None else o.status for o in outcomes] == ["failed", "finished", None]
    assert fake.stops == []


def test_a_run_stopped_by_a_signal_stops_the_others_and_no_more_start(tmp_path, monkeypatch):
    fake, outcomes, _, _ = _drive(monkeypatch, tmp_path,
                                  {"a": ["interrupted"], "b": ["interrupted"], "c": ["ok"]},
                                  "abc")
    assert [None if o is None else o.status for o in outcomes] == [
        "interrupted", "interrupted", None]
    assert fake.stops == [(1, f"the stop of {tmp_path / 'a'}")]  # b's worker was asked


@pytest.mark.parametrize("skip", ["ab", "a"])
def test_finished_runs_need_no_worker(tmp_path, monkeypatch, skip):
    fake, outcomes, _, _ = _drive(monkeypatch, tmp_path, {"b": ["ok"]}, "ab", skip=skip)
    assert outcomes[0].status == "skipped (already finished)"
    assert fake.started_workers == (0 if skip == "ab" else 1)
    assert fake.shut_down == (skip != "ab")  # nothing to train: Ray not even started
