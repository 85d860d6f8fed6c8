"""The bench YAML of `blogml bench optimizers`, checked with the config schema primitives.

    bench: optimizers
    out_dir: runs/bench/{config}
    seeds: [0, 1, 2]
    problems:        # name -> optbench data/model/train sections (+ target_loss, optimizers)
      quadratic: {data: {problem: noisy_quadratic}, train: {...}, target_loss: 11.0}
    optimizers:      # name -> an `optimizer:` section
      sgd: {name: sgd, learning_rate: 0.1}
    claims:          # name -> a statement the report checks against the runs
      lookahead: {kind: steadier, cell: quadratic/sgd_lookahead, baseline: quadratic/sgd}

Problem and optimizer sections are checked by the very schemas `blogml train` uses, under
their bench key path (`problems.quadratic.data.dim`), so a mistake reads the same here.
Nothing here imports Keras.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from blogml.comparison.search import KINDS, with_point
from blogml.config.common import Template
from blogml.config.optimizer import OPTIMIZER
from blogml.config.schema import (
    Float,
    Int,
    Issues,
    ListOf,
    MapOf,
    Pattern,
    Section,
    Spec,
    Str,
    TaggedUnion,
    join,
    merged_fields,
    show,
    suggest,
)
from blogml.tasks.optbench import SCHEMA as OPTBENCH

TASK_PARTS = ("data", "model", "train")  # a problem's sections that go into its runs' configs
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Name(Str):
    """A problem, optimizer or claim name; it becomes a directory name."""

    def expected(self) -> str:
        return "a name of letters, digits, '_', '.' or '-'"

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        if not isinstance(value, str) or not _NAME.match(value):
            return self._reject(value, path, issues)
        return value


class CellName(Str):
    """`problem/optimizer`: one cell of the grid (all its seeds)."""

    def expected(self) -> str:
        return "PROBLEM/OPTIMIZER, e.g. quadratic/sgd"

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        parts = value.split("/") if isinstance(value, str) else []
        if len(parts) != 2 or not all(_NAME.match(part) for part in parts):
            return self._reject(value, path, issues)
        return value


class Target(Section):
    """`target: {metric: val_accuracy, value: 0.9}`: what "reached" means for a problem."""

    def __init__(self) -> None:
        super().__init__({
            "metric": Str(doc="the validation metric, val_<metric> (one the problem reports)"),
            "value": Float(doc="the value to reach: at or above it for a metric maximised, at "
                               "or below for one minimised"),
            "mode": Str(None, "min or max (default: the problem's train.monitor_mode when "
                              "metric is its monitor, else min for a loss and max otherwise)",
                        choices=["min", "max"]),
        }, "the validation target of time to target", optional=True)


PROBLEM_OWN: dict[str, Spec] = {
    "target_loss": Float(None, "training loss to reach: results.csv gives the first logged "
                               "step whose (window-mean) train loss is at or below it"),
    "target": Target(),
    "optimizers": ListOf(Name(), None, "the optimizers run on this problem (default: all)",
                         min_length=1),
}


class ProblemEntry(Section):
    """One `problems:` entry: the optbench `data`/`model`/`train` sections plus bench keys.

    The three sections are checked together by the optbench schema, since `data.problem`
    decides which `model` keys and `train.monitor` values are valid.
    """

    def __init__(self) -> None:
        super().__init__({**{part: OPTBENCH.fields[part] for part in TASK_PARTS},
                          **PROBLEM_OWN}, "a problem of the grid")

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        value = {} if value is None else value
        if not isinstance(value, Mapping):
            return self._reject(value, path, issues)
        for key in value:
            if key not in self.fields:
                issues.add(join(path, key), f"unknown key; {suggest(str(key), list(self.fields))}")
        task = OPTBENCH.check({"task": "optbench",
                               **{k: v for k, v in value.items() if k in TASK_PARTS}},
                              path, issues)
        own = Section(PROBLEM_OWN).check({k: v for k, v in value.items() if k in PROBLEM_OWN},
                                         path, issues)
        return {**{part: task[part] for part in TASK_PARTS}, **own}


class Space(Spec):
    """One searched key's range: `{log_uniform: [a, b]}` (0 < a < b), `{uniform: [a, b]}`
    (a < b) or `{choice: [v1, v2, ...]}`."""

    def expected(self) -> str:
        return "one of {log_uniform: [A, B]}, {uniform: [A, B]}, {choice: [V, ...]}"

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in KINDS:
            return self._reject(value, path, issues)
        kind, values = next(iter(value.items()))
        where = join(path, kind)
        if kind == "choice":
            if not isinstance(values, list) or not values:
                issues.add(where, f"must be a non-empty list of values, got {show(values)}")
            return {kind: values}
        bounds = Float().check(values[0], where, issues) if isinstance(values, list) \
            and len(values) == 2 else None
        if bounds is None:
            issues.add(where, f"must be [LOW, HIGH], got {show(values)}")
            return {kind: values}
        low, high = bounds, Float().check(values[1], where, issues)
        if not isinstance(low, float) or not isinstance(high, float):
            return {kind: values}
        if not low < high or (kind == "log_uniform" and low <= 0):
            issues.add(where, f"must be [LOW, HIGH] with {'0 < ' if kind == 'log_uniform' else ''}"
                              f"LOW < HIGH, got {show(values)}")
        return {kind: [low, high]}


TUNING_KEYS: dict[str, Spec] = {
    "search": MapOf(Str(), Space(), None, "searched optimizer keys (dotted: lookahead.alpha) "
                                          "-> their range; null: not tuned", min_length=1),
    "budget": Int(8, "tuning trials: points of the space, each run on tuning_seeds", min=1),
}


class OptimizerEntry(Spec):
    """One `optimizers:` entry: an optimizer section, its default point, plus the keys of
    tuning. Every point the space can give is checked as an optimizer section: its lowest
    and highest values, and every choice."""

    def __init__(self) -> None:
        super().__init__(doc="an optimizer section, with search and budget for tuning")

    def expected(self) -> str:
        return "an optimizer section"

    def _check(self, value: Any, path: str, issues: Issues) -> Any:
        if not isinstance(value, Mapping):
            return OPTIMIZER.check(value, path, issues)
        before = len(issues.items)
        section = OPTIMIZER.check(_without_tuning(value), path, issues)
        tuning = Section(TUNING_KEYS).check({k: value[k] for k in TUNING_KEYS if k in value},
                                            path, issues)
        if tuning["search"] and len(issues.items) == before:
            for extreme in _extremes(tuning["search"]):
                scratch = Issues()
                OPTIMIZER.check(with_point(_without_tuning(value), extreme), path, scratch)
                for where, message in scratch.items:
                    key = where.removeprefix(path + ".")
                    issues.add(join(join(path, "search"), key),
                               f"the point {key}={show(extreme.get(key))} of this space: "
                               f"{message}")
                if scratch:
                    break
        return {**section, **tuning}


def _without_tuning(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k not in TUNING_KEYS}


def _extremes(space: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Points at the ends of every range and at every choice (all lows, all highs, then
    each choice of each key with the other keys low)."""
    def end(spec: Mapping[str, Any], which: int) -> Any:
        values = next(iter(spec.values()))
        return values[0] if "choice" in spec else values[which]
    low = {key: end(spec, 0) for key, spec in space.items()}
    high = {key: end(spec, 1) for key, spec in space.items()}
    points = [low, high]
    for key, spec in space.items():
        if "choice" in spec:
            points += [{**low, key: choice} for choice in spec["choice"]]
    return points


CLAIM_COMMON: dict[str, Spec] = {
    "kind": Str(doc="what is claimed: same_result, steadier or untouched_rows",
                choices=["same_result", "steadier", "untouched_rows"]),
    "statement": Str(None, "the claim in words, for the report (default: from the kind)"),
    "cell": CellName(doc="the runs the claim is about"),
    "baseline": CellName(doc="the runs they are compared with"),
}

_CLAIM_METRIC = Str("val_loss", "what is compared: loss (the logged training loss) or "
                                "val_<metric> (an evaluation metric of the problem)")

CLAIM_KINDS: dict[str, dict[str, Spec]] = {
    # `cell` ends where `baseline` ends: |final metric of cell − baseline| <= tolerance per seed
    "same_result": {
        "metric": _CLAIM_METRIC,
        "tolerance": Float(1e-3, "largest allowed difference, per seed", min=0.0),
    },
    # `cell` fluctuates less: std of the metric over the last part of training is lower
    "steadier": {
        "metric": _CLAIM_METRIC,
        "last_fraction": Float(0.5, "the part of training (by step) whose values are compared",
                               min=0.0, max=1.0, min_exclusive=True),
    },
    # `cell` leaves the rows of `variable` absent from the training data bit-identical
    "untouched_rows": {
        "variable": Pattern("embeddings", "the variable (name regex) whose rows are compared; "
                                          "an embedding_bag problem's embedding table"),
    },
}


class ClaimSection(TaggedUnion):
    """A claim; which keys it takes depends on its `kind`."""

    def __init__(self) -> None:
        variants = {kind: Section({**CLAIM_COMMON, **own}) for kind, own in CLAIM_KINDS.items()}
        super().__init__(merged_fields(v.fields for v in variants.values()),
                         "a claim checked against the runs", tag="kind", variants=variants,
                         foreign="is a key of {owners} claims, not of {tag}; remove it or "
                                 "change kind")


def optimizers_of(bench: dict[str, Any], problem: str) -> list[str]:
    """The optimizers a problem runs, in the order of the `optimizers:` section."""
    chosen = bench["problems"][problem]["optimizers"]
    return [name for name in bench["optimizers"] if chosen is None or name in chosen]


class Sound:
    """Which parts of a checked bench came out without issues. The rules across parts
    (names that refer to each other, the runs of the grid) run on the sound parts even when
    others are wrong, so that every mistake of a file is reported in one round."""

    def __init__(self, issues: Issues) -> None:
        self.paths = [path for path, _ in issues.items]

    def usable(self, path: str) -> bool:
        """No issue at `path` or above it: the value has its type (its items may be wrong)."""
        return not any(_within(path, where) for where in self.paths)

    def sound(self, path: str) -> bool:
        """No issue at `path`, above it or inside it."""
        return self.usable(path) and not any(_within(where, path) for where in self.paths)


def _within(path: str, ancestor: str) -> bool:
    return not ancestor or path == ancestor or path.startswith((ancestor + ".", ancestor + "["))


def check_references(bench: dict[str, Any], sound: Sound, issues: Issues) -> None:
    """Every name refers to something defined, and every optimizer runs somewhere (checked
    where the parts involved are sound)."""
    if sound.usable("seeds"):
        seen: set[int] = set()
        for i, seed in enumerate(bench["seeds"]):
            if sound.sound(f"seeds[{i}]"):
                if seed in seen:
                    issues.add(f"seeds[{i}]", f"repeats seed {seed}")
                seen.add(seed)
    if not sound.usable("problems") or not sound.usable("optimizers"):
        return
    optimizers = list(bench["optimizers"])
    used: set[str] = set()
    every_list_sound = True
    for name, problem in bench["problems"].items():
        if not sound.sound(f"problems.{name}.optimizers"):
            every_list_sound = False
            continue
        for i, optimizer in enumerate(problem["optimizers"] or []):
            if optimizer not in optimizers:
                issues.add(f"problems.{name}.optimizers[{i}]",
                           f"unknown optimizer {optimizer!r}; {suggest(optimizer, optimizers)}")
        used.update(optimizers_of(bench, name))
    for name in optimizers:
        if every_list_sound and name not in used and sound.usable(f"optimizers.{name}"):
            issues.add(f"optimizers.{name}", "runs on no problem (none lists it in its "
                                             "optimizers); add it to one or remove it")
    if sound.usable("claims"):
        for name, claim in bench["claims"].items():
            if sound.sound(f"claims.{name}.kind"):
                _check_claim(bench, claim, f"claims.{name}", sound, issues)


def _check_claim(bench: dict[str, Any], claim: dict[str, Any], path: str, sound: Sound,
                 issues: Issues) -> None:
    problems = list(bench["problems"])
    for role in ("cell", "baseline"):
        where = join(path, role)
        if not sound.sound(where):
            continue
        problem, optimizer = claim[role].split("/")
        if problem not in problems:
            issues.add(where, f"unknown problem {problem!r}; {suggest(problem, problems)}")
            continue
        if not sound.sound(f"problems.{problem}.optimizers"):
            continue
        if optimizer not in optimizers_of(bench, problem):
            issues.add(where, f"optimizer {optimizer!r} does not run on problem {problem!r} "
                              f"(it runs {', '.join(optimizers_of(bench, problem))})")
            continue
        if not sound.sound(f"problems.{problem}.data.problem"):
            continue
        data = bench["problems"][problem]["data"]
        if claim["kind"] == "untouched_rows" and data["problem"] != "embedding_bag":
            issues.add(where, f"problem {problem!r} is {data['problem']}; untouched_rows "
                              "needs an embedding_bag problem")
        elif "metric" in claim and sound.sound(join(path, "metric")):
            metrics = ["loss"] + OPTBENCH.monitors(data["problem"])
            if claim["metric"] not in metrics:
                issues.add(join(path, "metric"), f"{problem} logs no {show(claim['metric'])}; "
                                                 f"expected one of: {', '.join(metrics)}")


BENCH = Section({
    "bench": Str(doc="which benchmark this file describes", choices=["optimizers"]),
    "out_dir": Template("runs/bench/{config}", "the bench directory (runs, results.csv, "
                        "report.md, plots); {config}: the file's stem", ["config"]),
    "backend": OPTBENCH.fields["backend"],
    "seeds": ListOf(Int(min=0), [0], "every cell runs once per seed", min_length=1),
    "problems": MapOf(Name(), ProblemEntry(), doc="name -> optbench data/model/train sections",
                      min_length=1),
    "tuning_seeds": ListOf(Int(min=0), [0], "seeds of the tuning trials (the best point is "
                           "then run on seeds)", min_length=1),
    "search_seed": Int(0, "seed of the quasirandom sequence of search points", min=0),
    "optimizers": MapOf(Name(), OptimizerEntry(), doc="name -> an optimizer section (plus "
                        "search and budget)", min_length=1),
    "claims": MapOf(Name(), ClaimSection(), {}, "name -> a claim the report checks"),
}, "an optimizer benchmark")  # the rules across sections: `check_references`
