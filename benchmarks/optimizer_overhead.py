"""Derived-optimizer overhead: a full training step with the tricks on ÷ with plain Adam.

Judged (target ≤ 1.10, on TensorFlow and on JAX, on both models): every derived
trick but accumulation (piecewise schedule, weight decay, layer adaptation, Lookahead, lazy
rows on the embeddings, EMA, a paramwise multiplier). Accumulation is reported beside it, not
judged: it skips the optimizer on 3 micro-batches in 4, which flatters the per-call ratio.

Beside it, in the JAX process, the same ratio for the peer: an optax chain of the same
tricks ÷ optax's Adam, one jitted step (Keras's `stateless_call` + optax) on the same model
and batch. Its lazy rows mask the weights' update only (optax has no way to keep the
moments of untouched rows), so it does a little less than blogml there.

A step is one `train_on_batch` call (one jitted step for optax), timed after warm-up. In
each round every variant is built afresh and the variants alternate step by step, in a
shuffled order, so that drifts of the machine hit them alike; each ratio is the median
over rounds of that round's ratio of median step times, with the spread (min, max) over
rounds. The script runs itself once per backend (a process has one Keras backend) and
prints one JSON line.

    python benchmarks/optimizer_overhead.py [--rounds 5] [--jit-compile]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGET = 1.10
BASE = {"name": "adam", "learning_rate": 1e-3}
SCHEDULE = {100: 1.0, 1000: 0.1}
ALL_TRICKS = {
    **BASE,
    "schedule": {"piecewise_linear": SCHEDULE},
    "weight_decay": 0.01,
    "exclude_from_weight_decay": ["bias", "norm"],
    "layer_adaptation": True,
    "exclude_from_layer_adaptation": ["bias", "norm"],
    "gradient_accumulation_steps": 4,
    "lookahead": {"k": 5, "alpha": 0.5},
    "lazy": {"include": ["embeddings"]},
    "ema": {"momentum": 0.999},
    "paramwise_lr": {"logits": 2.0},
}
ALL_BUT_ACCUMULATION = {k: v for k, v in ALL_TRICKS.items() if k != "gradient_accumulation_steps"}
VARIANTS = {"base": BASE, "all_but_accumulation": ALL_BUT_ACCUMULATION, "all": ALL_TRICKS}
STEPS = {"mlp": 200, "transformer": 50}
# Keras's `jit_compile="auto"` leaves XLA off on a CPU-only machine and turns it on on a GPU:
# `--jit-compile` times both steps under XLA, as an accelerator would run them.
JIT_COMPILE = ["auto"]


def mlp(rng):
    import keras

    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(10, name="logits")])
    x = rng.normal(size=(64, 32)).astype("float32")
    y = rng.integers(0, 10, size=64)
    return model, x, y, "MLP 32-256-256-10, batch 64"


def transformer(rng):
    """Two post-LN encoder blocks at BERT-small width (hidden 256, 4 heads, ffn 1024)."""
    import keras

    vocab, length, hidden = 8000, 64, 256
    tokens = keras.Input((length,), dtype="int32")
    h = keras.layers.Embedding(vocab, hidden)(tokens)
    for _ in range(2):
        attention = keras.layers.MultiHeadAttention(4, hidden // 4)(h, h)
        h = keras.layers.LayerNormalization()(h + attention)
        ffn = keras.layers.Dense(4 * hidden, activation="gelu")(h)
        h = keras.layers.LayerNormalization()(h + keras.layers.Dense(hidden)(ffn))
    logits = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling1D()(h))
    model = keras.Model(tokens, logits)
    x = rng.integers(0, vocab, size=(16, length)).astype("int32")
    y = rng.integers(0, 2, size=16)
    return model, x, y, f"2-layer transformer, hidden {hidden}, seq {length}, batch 16"


MODELS = {"mlp": mlp, "transformer": transformer}


def _fresh(build):
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    return build(np.random.default_rng(0))


def _warm(step):
    for _ in range(20):  # trace, compile, warm caches
        step()
    return step


def median_step_seconds(steps: dict[str, object], count: int) -> dict[str, float]:
    """Median time of each warm step, the variants alternating step by step: a drift of the
    machine (seconds long on a shared VM) then hits every variant alike. Their order is
    shuffled at every step (seeded), so that none always runs right after the same other."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    order = random.Random(0)
    for _ in range(count):
        for name in order.sample(list(steps), len(steps)):
            step = steps[name]
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def keras_step(build, config: dict):
    import keras

    from blogml.optimizers import build_optimizer

    model, x, y, _ = _fresh(build)
    model.compile(optimizer=build_optimizer(config), jit_compile=JIT_COMPILE[0],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return _warm(lambda: model.train_on_batch(x, y))


def optax_step(build, tricks: bool):
    """One jitted step of the model's loss and gradient and optax's update."""
    import jax
    import jax.numpy as jnp
    import keras
    import optax

    model, x, y, _ = _fresh(build)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    params = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]
    paths = [v.path for v in model.trainable_variables]

    def loss(values, batch_x, batch_y):
        logits, _ = model.stateless_call(values, frozen, batch_x, training=True)
        return loss_fn(batch_y, logits)

    gradient = jax.grad(loss)
    if not tricks:
        tx = optax.adam(BASE["learning_rate"], eps=1e-7)
        state = tx.init(params)

        @jax.jit
        def plain(values, opt_state, batch_x, batch_y):
            updates, opt_state = tx.update(gradient(values, batch_x, batch_y), opt_state, values)
            return optax.apply_updates(values, updates), opt_state

        carry = [params, state]

        def step():
            carry[:] = plain(*carry, x, y)
            jax.block_until_ready(carry[0])

        return _warm(step)

    def mask(patterns, keep=False):
        return [any(p in path for p in patterns) == keep for path in paths]

    t, m = list(SCHEDULE), list(SCHEDULE.values())
    schedule = lambda count: BASE["learning_rate"] * jnp.interp(  # noqa: E731
        count, jnp.array([0.0, *t]), jnp.array([0.0, *m]))
    fast = optax.chain(
        optax.scale_by_adam(eps=1e-7),
        optax.masked(optax.scale_by_trust_ratio(),
                     mask(ALL_TRICKS["exclude_from_layer_adaptation"])),
        optax.masked(optax.add_decayed_weights(ALL_TRICKS["weight_decay"]),
                     mask(ALL_TRICKS["exclude_from_weight_decay"])),
        optax.scale_by_schedule(lambda count: -schedule(count)),
        optax.masked(optax.scale(2.0), mask(["logits"], keep=True)),
    )
    look = ALL_TRICKS["lookahead"]
    tx = optax.lookahead(fast, sync_period=look["k"], slow_step_size=look["alpha"])
    lazy = mask(ALL_TRICKS["lazy"]["include"], keep=True)
    momentum = jnp.float32(ALL_TRICKS["ema"]["momentum"])

    @jax.jit
    def chained(values, opt_state, average, count, batch_x, batch_y):
        grads = gradient(values.fast, batch_x, batch_y)
        updates, opt_state = tx.update(grads, opt_state, values)
        touched = [jnp.any(g != 0, axis=tuple(range(1, g.ndim)), keepdims=True) if row_wise
                   else None for g, row_wise in zip(grads, lazy)]
        updates = optax.LookaheadParams(
            fast=[u if keep is None else jnp.where(keep, u, 0.0)
                  for u, keep in zip(updates.fast, touched)], slow=updates.slow)
        values = optax.apply_updates(values, updates)
        count = count + 1
        w = (1 - momentum) / (1 - momentum ** count)
        average = [a + w * (p - a) for a, p in zip(average, values.fast)]
        return values, opt_state, average, count

    values = optax.LookaheadParams.init_synced(params)
    carry = [values, tx.init(values), [jnp.zeros_like(p) for p in params], jnp.float32(0)]

    def step():
        carry[:] = chained(*carry, x, y)
        jax.block_until_ready(carry[0])

    return _warm(step)


def _spread(ratios: list[float]) -> dict:
    return {"ratio": round(statistics.median(ratios), 3),
            "spread": [round(min(ratios), 3), round(max(ratios), 3)]}


def measure_backend(rounds: int) -> dict:
    """Every variant on every model, interleaved in rounds, in this process's backend."""
    import keras

    optax_too = keras.backend.backend() == "jax"
    results = {}
    for name, build in MODELS.items():
        times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        if optax_too:
            times |= {"optax_base": [], "optax_tricks": []}
        for _ in range(rounds):  # fresh models each round
            steps = {variant: keras_step(build, config) for variant, config in VARIANTS.items()}
            if optax_too:
                steps |= {"optax_base": optax_step(build, False),
                          "optax_tricks": optax_step(build, True)}
            for variant, seconds in median_step_seconds(steps, STEPS[name]).items():
                times[variant].append(seconds)

        def ratios(numerator: str, denominator: str = "base") -> list[float]:
            return [a / b for a, b in zip(times[numerator], times[denominator])]

        entry = {"model": _fresh(build)[3],
                 "base_step_ms": round(statistics.median(times["base"]) * 1e3, 3),
                 "all_but_accumulation": _spread(ratios("all_but_accumulation")),
                 "all_with_accumulation": _spread(ratios("all"))}
        if optax_too:
            entry["optax_base_step_ms"] = round(statistics.median(times["optax_base"]) * 1e3, 3)
            entry["optax_chain"] = _spread(ratios("optax_tricks", "optax_base"))
        results[name] = entry
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jit-compile", action="store_true",
                        help="compile both Keras steps with XLA (Keras's default on a GPU)")
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # one backend, in a child
    args = parser.parse_args()
    if args.jit_compile:
        JIT_COMPILE[0] = True
    if args.backend:
        print(json.dumps(measure_backend(args.rounds)))
        return
    backends = {}
    for backend in ("tensorflow", "jax"):
        child = subprocess.run(
            [sys.executable, __file__, "--rounds", str(args.rounds), "--backend", backend,
             *(["--jit-compile"] if args.jit_compile else [])],
            env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True, text=True,
            check=True)
        backends[backend] = json.loads(child.stdout.strip().splitlines()[-1])
    judged = [entry["all_but_accumulation"]["ratio"] for results in backends.values()
              for entry in results.values()]
    below_optax = all(backends["jax"][name]["all_but_accumulation"]["ratio"]
                      < backends["jax"][name]["optax_chain"]["ratio"] for name in MODELS)
    print(json.dumps({
        "benchmark": "optimizer_overhead",
        "tricks": sorted(k for k in ALL_BUT_ACCUMULATION if k not in BASE),
        **backends,
        "target_ratio": TARGET,
        "meets_target": max(judged) <= TARGET,
        "below_optax": below_optax,
        "rounds": args.rounds,
        "jit_compile": JIT_COMPILE[0],
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
