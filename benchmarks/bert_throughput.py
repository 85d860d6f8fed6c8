"""BERT training throughput: our Keras BERT ÷ `transformers.BertModel` (torch, CPU).

Target ratio ≥ 1.0. Both sides do the work of one fine-tuning step on the same config,
the same padded batch and the same number of CPU threads: forward in training mode (dropout
on), a scalar loss (mean of the squared sequence output plus mean of the squared pooled
output), gradients for every weight, and an SGD update. Ours is what a blogml run does: the
model, its loss in `compute_loss`, compiled with an optimizer and stepped with
`train_on_batch`, once with `jit_compile=True` (XLA) and once without (a plain tf.function;
blogml's default `jit_compile: auto` resolves to this on a CPU-only TensorFlow); on JAX there
is only the jitted step. Theirs is the usual eager torch loop (`loss.backward()`,
`optimizer.step()`), torch's default attention (SDPA). After warm-up, the sides are
timed in alternating rounds so that drifts of the machine hit all alike; each round gives a
sequences/s, the median is reported. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=21128, help="Chinese BERT's vocabulary")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads on both sides (default: torch's default)")
    parser.add_argument("--warmup", type=int, default=3, help="steps before timing, per side")
    parser.add_argument("--steps", type=int, default=4, help="steps per timed round")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--jit-compile", choices=("both", "on", "off"), default="both")
    return parser.parse_args(argv)


def make_batch(args: argparse.Namespace):
    """Token ids, two segments, and lengths between seq/2 and seq (a padded batch)."""
    import numpy as np

    rng = np.random.default_rng(0)
    lengths = rng.integers(args.seq // 2, args.seq + 1, size=args.batch)
    positions = np.arange(args.seq)[None]
    padding_mask = (positions < lengths[:, None]).astype("int32")
    token_ids = rng.integers(5, args.vocab, size=(args.batch, args.seq)).astype("int32")
    segment_ids = (positions >= lengths[:, None] // 2).astype("int32") * padding_mask
    return {"token_ids": token_ids * padding_mask, "segment_ids": segment_ids,
            "padding_mask": padding_mask}


def set_threads(threads: int) -> None:
    import keras
    import torch

    torch.set_num_threads(threads)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)


def ours(args: argparse.Namespace, batch: dict, jit_compile: bool):
    """A `train_on_batch` step closure for our BERT, compiled as a blogml run compiles it."""
    import keras
    from keras import ops

    from blogml.models.bert import BertConfig, build_bert

    class SquaredOutputs(keras.Model):
        """The BERT with its loss in `compute_loss` (as blogml's models do): no targets."""

        def __init__(self, bert: keras.Model) -> None:
            super().__init__()
            self.bert = bert

        def call(self, inputs, training=False):
            return self.bert(inputs, training=training)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return (ops.mean(ops.square(y_pred["sequence_output"]))
                    + ops.mean(ops.square(y_pred["pooled_output"])))

    keras.utils.set_random_seed(0)
    config = BertConfig(vocab_size=args.vocab, hidden_size=args.hidden,
                        num_hidden_layers=args.layers, num_attention_heads=args.heads,
                        intermediate_size=args.intermediate)
    model = SquaredOutputs(build_bert(config))
    model.compile(optimizer=keras.optimizers.SGD(1e-3), jit_compile=jit_compile)
    return lambda: model.train_on_batch(batch)  # returns numpy: waits for the step


def theirs(args: argparse.Namespace, batch: dict):
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=args.vocab, hidden_size=args.hidden,
                                     num_hidden_layers=args.layers,
                                     num_attention_heads=args.heads,
                                     intermediate_size=args.intermediate)
    model = transformers.BertModel(config).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    inputs = {"input_ids": torch.tensor(batch["token_ids"], dtype=torch.long),
              "token_type_ids": torch.tensor(batch["segment_ids"], dtype=torch.long),
              "attention_mask": torch.tensor(batch["padding_mask"], dtype=torch.long)}

    def step() -> float:
        out = model(**inputs)
        loss = out.last_hidden_state.square().mean() + out.pooler_output.square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import keras
    import torch

    threads = args.threads or torch.get_num_threads()
    set_threads(threads)
    batch = make_batch(args)
    backend = keras.backend.backend()
    modes = {"both": (True, False), "on": (True,), "off": (False,)}[args.jit_compile]
    if backend != "tensorflow":
        modes = (True,) if backend == "jax" else (False,)  # jax always jits; torch never
    steps = {"transformers": theirs(args, batch)}
    steps.update({f"jit_{'on' if jit else 'off'}": ours(args, batch, jit) for jit in modes})
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            rates[name].append(args.batch * args.steps / (time.perf_counter() - start))
    median = {name: statistics.median(values) for name, values in rates.items()}
    reference = median.pop("transformers")
    best = max(median, key=median.get)
    print(json.dumps({
        "benchmark": "bert_throughput",
        "backend": backend,
        "config": {"layers": args.layers, "hidden": args.hidden, "heads": args.heads,
                   "intermediate": args.intermediate, "vocab": args.vocab, "seq": args.seq,
                   "batch": args.batch, "threads": threads, "optimizer": "sgd",
                   "padded": "lengths seq/2..seq"},
        "ours_seq_per_s": round(median[best], 2),
        "ours_mode": best,
        "transformers_seq_per_s": round(reference, 2),
        "ratio": round(median[best] / reference, 3),
        **{f"ratio_{name}": round(rate / reference, 3) for name, rate in median.items()},
        **{f"ours_{name}_seq_per_s": round(rate, 2) for name, rate in median.items()},
        "target_ratio": 1.0,
        "meets_target": median[best] / reference >= 1.0,
        "repeats": args.repeats,
        "all": {name: [round(r, 2) for r in values] for name, values in rates.items()},
        "versions": {"keras": keras.__version__, "torch": torch.__version__},
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
