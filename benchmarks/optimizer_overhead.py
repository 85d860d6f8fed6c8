"""Derived-optimizer overhead: a full training step with the tricks on ÷ with plain Adam.

Judged (target ≤ 1.10, on TensorFlow and on JAX, on both models): every derived
trick but accumulation (piecewise schedule, weight decay, layer adaptation, Lookahead, lazy
rows on the embeddings, EMA, a paramwise multiplier). Accumulation is reported beside it, not
judged: it skips the optimizer on 3 micro-batches in 4, which flatters the per-call ratio.

Beside it, in the JAX process, the same ratio for the peer: an optax chain of the same
tricks ÷ optax's Adam, one jitted step (Keras's `stateless_call` + optax) on the same model
and batch. optax has no lazy rows: `lazy_rows` wraps its Adam so that untouched rows keep
their moments and take no step, as blogml's do (until 2026-12-04 the chain only masked the
weights' update, which on the transformer's embedding table is less work than blogml does).
Its trust ratio still takes ‖θ‖ over the whole table, not over the touched rows.

And a floor: the same tricks written by hand as one jitted JAX program (Adam's passes and
the tricks' in one XLA computation, nothing but the arithmetic), ÷ optax's Adam. A ratio
depends on its denominator: Keras's `train_on_batch` costs more than a bare jitted step, so
the added milliseconds (`added_ms`: tricks step − base step, per harness) are printed too.
Keras's jitted step donates its state (XLA writes the new weights and slots into the old
buffers), which on a CPU makes even plain Adam's step slower; `optax_chain_donated` and
`hand_fused_donated` are the peer and the floor under that condition, ÷ optax's Adam
donated likewise (`optax_base_donated_step_ms`).

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


def _loss():
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def keras_step(build, config: dict):
    from blogml.optimizers import build_optimizer

    model, x, y, _ = _fresh(build)
    model.compile(optimizer=build_optimizer(config), jit_compile=JIT_COMPILE[0], loss=_loss())
    return _warm(lambda: model.train_on_batch(x, y))


def _own_buffers(tree):
    """Copies of every array in `tree`: a donated argument must not share a buffer."""
    import jax
    import jax.numpy as jnp

    return jax.tree.map(lambda a: jnp.array(a, copy=True), tree)


def _touched_rows(grads, row_wise):
    """Each gradient's mask of the rows it touches where `row_wise`, else None."""
    import jax.numpy as jnp

    return [jnp.any(g != 0, axis=tuple(range(1, g.ndim)), keepdims=True) if lazy else None
            for g, lazy in zip(grads, row_wise)]


def _untouched_kept(new, old, touched):
    """`new`, with the old values in the rows outside each mask of `touched` (None: all new)."""
    import jax.numpy as jnp

    return [n if rows is None else jnp.where(rows, n, o) for n, o, rows in zip(new, old, touched)]


def lazy_rows(adam, row_wise):
    """optax's `scale_by_adam`, lazy on the `row_wise` leaves as blogml's lazy rows are: rows
    the gradient does not touch keep their moments and get a zero step (optax has no such
    transform; `optax.masked` is per leaf, not per row). The layer adaptation after it then
    takes the step's norm over the touched rows, as blogml does."""
    import jax.numpy as jnp
    import optax

    def update(grads, state, params=None):
        updates, new = adam.update(grads, state, params)
        touched = _touched_rows(grads, row_wise)
        return (_untouched_kept(updates, [jnp.zeros_like(u) for u in updates], touched),
                new._replace(mu=_untouched_kept(new.mu, state.mu, touched),
                             nu=_untouched_kept(new.nu, state.nu, touched)))

    return optax.GradientTransformation(adam.init, update)


def optax_step(build, tricks: bool, donate: bool = False):
    """One jitted step of the model's loss and gradient and optax's update; with `donate`
    its state (weights, optimizer state, averages) is donated, as in Keras's step."""
    import jax
    import jax.numpy as jnp
    import optax

    model, x, y, _ = _fresh(build)
    loss_fn = _loss()
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

        def plain(values, opt_state, batch_x, batch_y):
            updates, opt_state = tx.update(gradient(values, batch_x, batch_y), opt_state, values)
            return optax.apply_updates(values, updates), opt_state

        plain = jax.jit(plain, donate_argnums=(0, 1) if donate else ())
        carry = _own_buffers([params, state]) if donate else [params, state]

        def step():
            carry[:] = plain(*carry, x, y)
            jax.block_until_ready(carry[0])

        return _warm(step)

    def mask(patterns, keep=False):
        return [any(p in path for p in patterns) == keep for path in paths]

    t, m = list(SCHEDULE), list(SCHEDULE.values())
    schedule = lambda count: BASE["learning_rate"] * jnp.interp(  # noqa: E731
        count, jnp.array([0.0, *t]), jnp.array([0.0, *m]))
    lazy = mask(ALL_TRICKS["lazy"]["include"], keep=True)
    fast = optax.chain(
        lazy_rows(optax.scale_by_adam(eps=1e-7), lazy),
        optax.masked(optax.scale_by_trust_ratio(),
                     mask(ALL_TRICKS["exclude_from_layer_adaptation"])),
        optax.masked(optax.add_decayed_weights(ALL_TRICKS["weight_decay"]),
                     mask(ALL_TRICKS["exclude_from_weight_decay"])),
        optax.scale_by_schedule(lambda count: -schedule(count)),
        optax.masked(optax.scale(2.0), mask(["logits"], keep=True)),
    )
    look = ALL_TRICKS["lookahead"]
    tx = optax.lookahead(fast, sync_period=look["k"], slow_step_size=look["alpha"])
    momentum = jnp.float32(ALL_TRICKS["ema"]["momentum"])

    def chained(values, opt_state, average, count, batch_x, batch_y):
        grads = gradient(values.fast, batch_x, batch_y)
        updates, opt_state = tx.update(grads, opt_state, values)
        updates = optax.LookaheadParams(  # the decay moved untouched rows again
            fast=_untouched_kept(updates.fast, [jnp.zeros_like(u) for u in updates.fast],
                                 _touched_rows(grads, lazy)), slow=updates.slow)
        values = optax.apply_updates(values, updates)
        count = count + 1
        w = (1 - momentum) / (1 - momentum ** count)
        average = [a + w * (p - a) for a, p in zip(average, values.fast)]
        return values, opt_state, average, count

    chained = jax.jit(chained, donate_argnums=(0, 1, 2) if donate else ())
    values = optax.LookaheadParams.init_synced(params)
    carry = [values, tx.init(values), [jnp.zeros_like(p) for p in params], jnp.float32(0)]
    if donate:
        carry = _own_buffers(carry)

    def step():
        carry[:] = chained(*carry, x, y)
        jax.block_until_ready(carry[0])

    return _warm(step)


def hand_fused_step(build, donate: bool = False):
    """The tricks of ALL_BUT_ACCUMULATION (with blogml's semantics: lazy rows keep their
    moments, and their trust ratio is taken over the touched rows) written out as one
    jitted JAX function: the least a step of them costs when XLA sees it whole. With
    `donate`, the state (weights, moments, slow weights, averages) is donated."""
    import jax
    import jax.numpy as jnp

    model, x, y, _ = _fresh(build)
    loss_fn = _loss()
    params = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]
    paths = [v.path for v in model.trainable_variables]
    tricks = ALL_BUT_ACCUMULATION

    def matches(key, path):
        return any(pattern in path for pattern in key)

    multiplier = [2.0 if "logits" in path else 1.0 for path in paths]
    adapt = [not matches(tricks["exclude_from_layer_adaptation"], path) for path in paths]
    decay = [not matches(tricks["exclude_from_weight_decay"], path) for path in paths]
    lazy = [matches(tricks["lazy"]["include"], path) for path in paths]
    k, alpha = tricks["lookahead"]["k"], tricks["lookahead"]["alpha"]
    momentum, wd = jnp.float32(tricks["ema"]["momentum"]), tricks["weight_decay"]
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7
    knots = (jnp.array([0.0, *SCHEDULE]), jnp.array([0.0, *SCHEDULE.values()]))

    def loss(values, batch_x, batch_y):
        logits, _ = model.stateless_call(values, frozen, batch_x, training=True)
        return loss_fn(batch_y, logits)

    gradient = jax.grad(loss)

    def step(theta, m, v, slow, average, count, batch_x, batch_y):
        grads = gradient(theta, batch_x, batch_y)
        t = count + 1
        eta = BASE["learning_rate"] * jnp.interp(count, *knots)
        rate = eta * jnp.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        new = []
        for i, (g, touched) in enumerate(zip(grads, _touched_rows(grads, lazy))):
            m_i = m[i] + (g - m[i]) * (1 - beta_1)
            v_i = v[i] + (g * g - v[i]) * (1 - beta_2)
            delta = -rate * m_i / (jnp.sqrt(v_i) + epsilon) * multiplier[i]
            rows = True if touched is None else touched
            if adapt[i]:
                theta_sum = jnp.sum(jnp.where(rows, theta[i] ** 2, 0.0))
                delta_sum = jnp.sum(jnp.where(rows, delta ** 2, 0.0))
                delta = delta * jnp.where(jnp.minimum(theta_sum, delta_sum) > 0,
                                          eta * multiplier[i] * jnp.sqrt(theta_sum / delta_sum),
                                          1.0)
            if decay[i]:
                delta = delta - eta * multiplier[i] * wd * theta[i]
            new.append(tuple(jnp.where(rows, a, b) for a, b in
                             ((theta[i] + delta, theta[i]), (m_i, m[i]), (v_i, v[i]))))
        theta, m, v = (list(side) for side in zip(*new))
        theta, slow = jax.lax.cond(
            t % k == 0, lambda: ([s + alpha * (p - s) for p, s in zip(theta, slow)],) * 2,
            lambda: (theta, slow))
        w = (1 - momentum) / (1 - momentum ** t)
        average = [a + w * (p - a) for a, p in zip(average, theta)]
        return theta, m, v, slow, average, t

    step = jax.jit(step, donate_argnums=(0, 1, 2, 3, 4) if donate else ())
    zeros = [jnp.zeros_like(p) for p in params]
    carry = [params, zeros, list(zeros), list(params), list(zeros), jnp.float32(0)]
    if donate:
        carry = _own_buffers(carry)

    def run():
        carry[:] = step(*carry, x, y)
        jax.block_until_ready(carry[0])

    run.carry = carry  # for the check that it computes what blogml computes
    return _warm(run)


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
            times |= {name: [] for name in ("optax_base", "optax_tricks", "hand_fused",
                                            "optax_base_donated", "optax_tricks_donated",
                                            "hand_fused_donated")}
        for _ in range(rounds):  # fresh models each round
            steps = {variant: keras_step(build, config) for variant, config in VARIANTS.items()}
            if optax_too:
                steps |= {"optax_base": optax_step(build, False),
                          "optax_tricks": optax_step(build, True),
                          "hand_fused": hand_fused_step(build),
                          "optax_base_donated": optax_step(build, False, donate=True),
                          "optax_tricks_donated": optax_step(build, True, donate=True),
                          "hand_fused_donated": hand_fused_step(build, donate=True)}
            for variant, seconds in median_step_seconds(steps, STEPS[name]).items():
                times.setdefault(variant, []).append(seconds)

        def step_ms(variant: str) -> float:
            return round(statistics.median(times[variant]) * 1e3, 3)

        def ratios(numerator: str, denominator: str = "base") -> list[float]:
            return [a / b for a, b in zip(times[numerator], times[denominator])]

        def added_ms(numerator: str, denominator: str) -> float:
            return round(statistics.median(
                [a - b for a, b in zip(times[numerator], times[denominator])]) * 1e3, 3)

        def compared(numerator: str, denominator: str) -> dict:
            """A harness's tricks step over its own base: ratio, spread and added ms."""
            return {**_spread(ratios(numerator, denominator)),
                    "added_ms": added_ms(numerator, denominator)}

        entry = {"model": _fresh(build)[3],
                 "base_step_ms": step_ms("base"),
                 "all_but_accumulation": _spread(ratios("all_but_accumulation")),
                 "all_with_accumulation": _spread(ratios("all")),
                 "added_ms": added_ms("all_but_accumulation", "base")}
        if optax_too:
            entry |= {"optax_base_step_ms": step_ms("optax_base"),
                      "optax_chain": compared("optax_tricks", "optax_base"),
                      "hand_fused": compared("hand_fused", "optax_base"),
                      "optax_base_donated_step_ms": step_ms("optax_base_donated"),
                      "optax_chain_donated": compared("optax_tricks_donated",
                                                      "optax_base_donated"),
                      "hand_fused_donated": compared("hand_fused_donated",
                                                     "optax_base_donated")}
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
    def below(peer: str) -> bool:
        return all(backends["jax"][name]["all_but_accumulation"]["ratio"]
                   < backends["jax"][name][peer]["ratio"] for name in MODELS)

    print(json.dumps({
        "benchmark": "optimizer_overhead",
        "tricks": sorted(k for k in ALL_BUT_ACCUMULATION if k not in BASE),
        **backends,
        "target_ratio": TARGET,
        "meets_target": max(judged) <= TARGET,
        "below_optax": below("optax_chain"),
        # Keras's jitted step donates its state: the like-for-like peer is donated too.
        "below_optax_donated": below("optax_chain_donated"),
        "rounds": args.rounds,
        "jit_compile": JIT_COMPILE[0],
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
