"""Derived-optimizer overhead: step time with every trick on ÷ the base optimizer's.

Target ≤ 1.10. Two models, each trained with plain Adam and with Adam plus every trick of
MISSION §3 (piecewise schedule, weight decay, layer adaptation, gradient accumulation,
Lookahead, lazy rows on the embeddings, EMA, a paramwise multiplier). A step is one
`train_on_batch` call (a micro-batch under accumulation), timed after warm-up, the two
variants interleaved in rounds so drifts of the machine hit both alike; prints one JSON line
with the median ratio per model.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from blogml.optimizers import build_optimizer  # noqa: E402

BASE = {"name": "adam", "learning_rate": 1e-3}
ALL_TRICKS = {
    **BASE,
    "schedule": {"piecewise_linear": {100: 1.0, 1000: 0.1}},
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


def mlp(rng: np.random.Generator):
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(10, name="logits")])
    x = rng.normal(size=(64, 32)).astype("float32")
    y = rng.integers(0, 10, size=64)
    return model, x, y, "MLP 32-256-256-10, batch 64"


def transformer(rng: np.random.Generator):
    """Two post-LN encoder blocks at BERT-small width (hidden 256, 4 heads, ffn 1024)."""
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


# Accumulation skips the optimizer on n−1 micro-batches in n, which flatters the per-call
# ratio; the same tricks without it show the cost of an update with everything else on.
ALL_BUT_ACCUMULATION = {k: v for k, v in ALL_TRICKS.items() if k != "gradient_accumulation_steps"}


def step_seconds(build, config: dict, steps: int) -> list[float]:
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    model, x, y, _ = build(rng)
    model.compile(optimizer=build_optimizer(config),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for _ in range(20):  # trace, compile, warm caches
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return times


def measure(build, rounds: int, steps: int) -> dict:
    times: dict[str, list[float]] = {"base": [], "all": [], "all_but_accumulation": []}
    for _ in range(rounds):
        for name, config in (("base", BASE), ("all", ALL_TRICKS),
                             ("all_but_accumulation", ALL_BUT_ACCUMULATION)):
            times[name].append(statistics.median(step_seconds(build, config, steps)))
    ratios = [a / b for a, b in zip(times["all"], times["base"])]
    ratios_no_acc = [a / b for a, b in zip(times["all_but_accumulation"], times["base"])]
    return {"model": build(np.random.default_rng(0))[3],
            "base_step_ms": round(statistics.median(times["base"]) * 1e3, 3),
            "all_tricks_step_ms": round(statistics.median(times["all"]) * 1e3, 3),
            "ratio": round(statistics.median(ratios), 3),
            "ratio_without_accumulation": round(statistics.median(ratios_no_acc), 3),
            "ratios": [round(r, 3) for r in ratios]}


def main(rounds: int = 3, steps: int = 200) -> None:
    results = {"mlp": measure(mlp, rounds, steps), "transformer": measure(transformer, rounds,
                                                                           steps // 4)}
    worst = max(r["ratio"] for r in results.values())
    print(json.dumps({
        "benchmark": "optimizer_overhead",
        "backend": keras.backend.backend(),
        "tricks": sorted(k for k in ALL_TRICKS if k not in BASE),
        **results,
        "target_ratio": 1.10,
        "meets_target": worst <= 1.10,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
