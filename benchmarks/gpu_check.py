"""GPU check (JAX): NL2SQL at BERT-base size with MFU, VQ-VAE images/s, two runs sharing a GPU.

Written for a GPU box with only JAX (no TensorFlow: nothing here imports it; run it through
`benchmarks/gpu_check.sh`, which sets KERAS_BACKEND=jax). Each part runs in its own child
process of this script (`--part NAME`), so that a crash, an out-of-memory or a timeout of one
part is recorded as that part's `error` and the others still run, and so that this parent
process holds no GPU memory while part 3's runs share the device. Three parts:

1. `nl2sql`: the seed's four-head NL2SQL model (`blogml.models.nl2sql.NL2SQLModel` on
   `blogml.models.bert.build_bert`, built as `blogml/runners/nl2sql/runner.py` builds it
   without a checkpoint: random weights) at BERT-base size (12 layers, hidden 768, 12 heads,
   intermediate 3072, the Chinese vocabulary of 21128 tokens), batch 32, 160 tokens, under
   the `mixed_bfloat16` policy, Adam (5e-5), on one random batch laid out as the runner's
   features are (`[CLS] question [SEP]` then `[CLS] header [SEP]` per column, padding after;
   the four heads' labels and `op_mask`). `train_on_batch` (which waits for the step: it
   returns the loss as a number) is timed after warm-up steps (the first one compiles; its
   time is reported apart): `repeats` rounds of `steps` steps, median steps/s and
   sequences/s. Model FLOPs utilisation (MFU), the standard estimate (Chowdhery et al.
   2022, "PaLM", appendix B; Kaplan et al. 2020 for the 6N term):

       FLOPs per step = 6 * N * B * S  +  12 * L * S^2 * h * B

   with N the trainable non-embedding parameters (the 12 transformer blocks and the four
   heads; not the word/position/segment embeddings, not the frozen pooler), B the batch, S
   the sequence length, L the layers, h the hidden size. 6N per token is the forward (2N)
   and backward (4N) matmuls; 12*L*S*h per token (PaLM's 12*L*H*Q*T with H*Q = h, T = S) is
   the attention scores QK^T and context AV (2*S*h each per token and layer forward, times 3
   for forward + backward). Padded tokens are computed, so they count. MFU = FLOPs per step /
   step seconds / the device's peak dense bf16 FLOP/s (PEAK_BF16 below, from NVIDIA's data
   sheets, without the 2:4 sparsity figures; matched on `jax.devices()[0].device_kind`;
   `--peak-tflops` overrides). On a CPU, or a GPU not in the table, MFU is null. N is
   counted on the built model and checked against the closed form (`check_parameter_count`).
2. `vqvae`: the seed's VQ-VAE as `configs/vqvae/celeba64.yaml` configures it (64x64, z_dim
   128, 64 codes learned by the loss, batch 64, Adam 1e-3; `blogml.models.vqvae.VQVAE`, as
   `blogml/runners/vqvae/runner.py` builds it) on random uint8 images scaled to [-1, 1] as
   the HDF5 input does; `train_on_batch` images/s after warm-up, timed as in part 1.
3. `study`: two short VQ-VAE runs (the same model, seeds 0 and 1) on synthetic faces
   (`blogml data synth celeba` + `blogml data prepare celeba --size 64`, in a temp dir) as
   `blogml train A B` (one after another, one process) and as
   `blogml train A B --jobs 2 --gpus-per-run 0.5` (two Ray workers sharing the GPU; 2000
   faces, 1600 for training, 8 epochs of batch 64 = 200 steps per run; needs
   XLA_PYTHON_CLIENT_PREALLOCATE=false, which this script and gpu_check.sh set): both wall
   times (process start to exit, including imports, compilation and Ray's start), the ratio
   sequential / parallel, and each run's `distribution.cuda_visible_devices` from its
   summary.json. Where Ray sees no GPU (a CPU machine) the parallel side uses
   `--gpus-per-run 0` and the JSON says so. Every subprocess writes to a log file in the
   temp dir (kept with `--workdir`).

`--smoke` shrinks every size (a 2-layer BERT of hidden 64, 32 tokens, batch 4; VQ-VAE at
32 px, batch 8; a study of two optbench MLP runs) so the whole check runs in about 2
minutes on 2 CPU cores. Prints one JSON line.

    KERAS_BACKEND=jax python benchmarks/gpu_check.py [--smoke] [--peak-tflops T]
        [--parts nl2sql,vqvae,study] [--study-task vqvae|optbench] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # let two runs share a GPU
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CI", "true")  # no progress bars in the runs of part 3

REPO = Path(__file__).resolve().parent.parent
PARTS = ("nl2sql", "vqvae", "study")

# Peak dense (no 2:4 sparsity) bf16 tensor-core FLOP/s, NVIDIA data sheets; the first key
# found in `device_kind` wins, so more specific names come first.
PEAK_BF16 = {
    "H100 PCIe": 756e12,
    "H100": 989e12,  # SXM
    "H200": 989e12,
    "A100": 312e12,
    "A10G": 125e12,
    "L4": 121e12,
}

# Chinese BERT-base (google-research/bert chinese_L-12_H-768_A-12/bert_config.json); the
# vocabulary is blogml/assets/bert_chinese_vocab.txt's 21128 tokens.
BERT_BASE = {"layers": 12, "hidden": 768, "heads": 12, "intermediate": 3072, "vocab": 21128,
             "max_positions": 512, "segments": 2}
BERT_SMOKE = {"layers": 2, "hidden": 64, "heads": 2, "intermediate": 256, "vocab": 21128,
              "max_positions": 512, "segments": 2}
FULL = {"batch": 32, "seq": 160, "columns": 12, "question": 40, "warmup": 3, "steps": 20,
        "repeats": 3, "vqvae_size": 64, "vqvae_batch": None,  # None: the config's
        "study_task": "vqvae", "study_images": 2000, "study_epochs": 8,
        "part_timeout": 240, "run_timeout": 150}
SMOKE = {"batch": 4, "seq": 32, "columns": 4, "question": 10, "warmup": 2, "steps": 3,
         "repeats": 2, "vqvae_size": 32, "vqvae_batch": 8,
         "study_task": "optbench", "study_images": 300, "study_epochs": 1,
         "part_timeout": 240, "run_timeout": 240}


# ---- FLOPs ----------------------------------------------------------------------------------

def block_parameters(hidden: int, intermediate: int) -> int:
    """Parameters of one post-LN BERT block: Q, K, V and the attention output (4 h^2 + 4 h),
    the two FFN matmuls (2 h i + i + h) and two LayerNorms (4 h)."""
    return 4 * hidden * hidden + 2 * hidden * intermediate + 9 * hidden + intermediate


def embedding_parameters(bert: dict) -> int:
    """Word, position and segment embeddings and their LayerNorm."""
    h = bert["hidden"]
    return (bert["vocab"] + bert["max_positions"] + bert["segments"]) * h + 2 * h


def step_flops(non_embedding: int, bert: dict, batch: int, seq: int) -> int:
    """6 N B S + 12 L S^2 h B (PaLM, appendix B): see the module docstring."""
    attention = 12 * bert["layers"] * seq * seq * bert["hidden"] * batch
    return 6 * non_embedding * batch * seq + attention


# A hand-worked case of the closed forms, checked on import: h = 4, i = 16, 1 layer, 10
# words, 8 positions, 2 segments: a block has 4*16 + 2*4*16 + 9*4 + 16 = 64 + 128 + 36 + 16
# = 244 parameters, the embeddings (10 + 8 + 2) * 4 + 8 = 88; with B = 2, S = 8:
# 6 * 244 * 2 * 8 + 12 * 1 * 64 * 4 * 2 = 23424 + 6144 = 29568 FLOPs per step.
_TINY = {"layers": 1, "hidden": 4, "intermediate": 16, "vocab": 10, "max_positions": 8,
         "segments": 2}
assert block_parameters(4, 16) == 244
assert embedding_parameters(_TINY) == 88
assert step_flops(244, _TINY, batch=2, seq=8) == 29568


def check_parameter_count(model, bert: dict) -> dict:
    """The built model's parameters split as the FLOPs formula needs them, each checked
    against the closed form: the encoder's trainable weights outside `embeddings` are
    exactly L blocks, its embeddings exactly `embedding_parameters`, its frozen pooler
    h^2 + h, and model.count_params() is their sum plus the heads."""
    import numpy as np

    def size(weights) -> int:
        return int(sum(np.prod(w.shape) for w in weights))

    encoder = model.encoder
    embeddings = size(w for w in encoder.trainable_weights if w.path.startswith("embeddings"))
    blocks = size(w for w in encoder.trainable_weights if not w.path.startswith("embeddings"))
    pooler = size(encoder.get_layer("pooler_dense").weights)
    heads = model.count_params() - encoder.count_params()
    h = bert["hidden"]
    assert blocks == bert["layers"] * block_parameters(h, bert["intermediate"]), blocks
    assert embeddings == embedding_parameters(bert), embeddings
    assert pooler == h * h + h and size(encoder.non_trainable_weights) == pooler
    assert model.count_params() == embeddings + blocks + pooler + heads
    assert size(model.trainable_weights) == embeddings + blocks + heads
    return {"total": model.count_params(), "embeddings": embeddings, "blocks": blocks,
            "heads": heads, "frozen_pooler": pooler, "non_embedding_trainable": blocks + heads}


def peak_flops(device_kind: str, platform_name: str, override_tflops: float | None
               ) -> tuple[float | None, str]:
    """(peak dense bf16 FLOP/s or None, where it came from)."""
    if override_tflops:
        return override_tflops * 1e12, "--peak-tflops"
    if platform_name != "gpu":
        return None, f"no peak for platform {platform_name!r}: MFU is null"
    for name, peak in PEAK_BF16.items():
        if name.lower() in device_kind.lower():
            return peak, f"table entry {name!r} (dense bf16, no sparsity)"
    return None, f"{device_kind!r} not in the table: pass --peak-tflops for an MFU"


# ---- timing ---------------------------------------------------------------------------------

def time_steps(step, sizes: dict) -> dict:
    """Seconds of the first (compiling) call, then median steps/s over timed rounds, and
    the last step's logs."""
    start = time.perf_counter()
    last = step()
    first = time.perf_counter() - start
    for _ in range(sizes["warmup"] - 1):
        step()
    rates = []
    for _ in range(sizes["repeats"]):
        start = time.perf_counter()
        for _ in range(sizes["steps"]):
            last = step()
        rates.append(sizes["steps"] / (time.perf_counter() - start))
    return {"first_step_seconds": round(first, 2), "steps_per_s": statistics.median(rates),
            "all_steps_per_s": [round(r, 3) for r in rates], "last": last}


def device_facts() -> dict:
    import jax

    device = jax.devices()[0]
    return {"platform": device.platform, "device_kind": device.device_kind,
            "device_count": jax.device_count(), "jax": jax.__version__}


# ---- part 1: NL2SQL -------------------------------------------------------------------------

def nl2sql_batch(bert: dict, sizes: dict):
    """Inputs and labels of the shapes and dtypes `NL2SQLModel` trains on (see
    `blogml/runners/nl2sql/features.py`), random: `[CLS] question [SEP]`, then per column
    `[CLS] 3 header tokens [SEP]`, padding after."""
    import numpy as np

    from blogml.data.nl2sql_sql import LINK_SLOTS, NOT_A_VALUE, NOT_SELECTED, NUM_CONNECTORS

    rng = np.random.default_rng(0)
    batch, seq, columns, question = (sizes[k] for k in ("batch", "seq", "columns", "question"))
    used = 2 + question + 5 * columns
    assert used <= seq, f"question {question} + {columns} columns need {used} > {seq} tokens"
    x = {name: np.zeros((batch, seq), np.int32)
         for name in ("token_ids", "segment_ids", "padding_mask", "question_mask")}
    x["token_ids"][:, :used] = rng.integers(106, bert["vocab"], size=(batch, used))
    x["segment_ids"][:, 2 + question:used] = 1
    x["padding_mask"][:, :used] = 1
    x["question_mask"][:, 1:1 + question] = 1
    x["header_positions"] = np.tile(2 + question + 5 * np.arange(columns, dtype=np.int32),
                                    (batch, 1))
    x["header_mask"] = np.ones((batch, columns), np.int32)
    x["header_mask"][:, columns // 2 + 1:] = rng.integers(0, 2, (batch, columns - columns // 2 - 1))
    op = np.full((batch, seq), NOT_A_VALUE, np.int32)
    link = np.full((batch, seq, LINK_SLOTS), -1, np.int32)
    value = slice(1 + question // 2, 1 + question // 2 + 3)  # a 3-token value per question
    op[:, value] = rng.integers(0, NOT_A_VALUE, (batch, 1))
    link[:, value, 0] = rng.integers(0, columns // 2 + 1, (batch, 1))
    y = {"conn": rng.integers(0, NUM_CONNECTORS, batch).astype(np.int32),
         "agg": rng.integers(0, NOT_SELECTED + 1, (batch, columns)).astype(np.int32),
         "op": op, "link": link, "op_mask": x["question_mask"].copy()}
    return x, y


def part_nl2sql(args: argparse.Namespace, sizes: dict) -> dict:
    import keras

    from blogml.models.bert import BertConfig, build_bert
    from blogml.models.nl2sql import NL2SQLModel
    from blogml.runners.nl2sql.features import INPUT_NAMES

    bert = BERT_SMOKE if args.smoke else BERT_BASE
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    x, y = nl2sql_batch(bert, sizes)
    # As NL2SQLRunner.build_model without `model.pretrained` (configs/nl2sql's dropout and
    # link_units), then one call to create the heads before the optimizer is built.
    encoder = build_bert(BertConfig(
        vocab_size=bert["vocab"], hidden_size=bert["hidden"], num_hidden_layers=bert["layers"],
        num_attention_heads=bert["heads"], intermediate_size=bert["intermediate"],
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        max_position_embeddings=max(bert["max_positions"], sizes["seq"])))
    model = NL2SQLModel(encoder, 256)
    model({name: x[name][:1] for name in INPUT_NAMES})
    params = check_parameter_count(model, bert)
    model.compile(optimizer=keras.optimizers.Adam(5e-5))
    timing = time_steps(lambda: model.train_on_batch(x, y, return_dict=True), sizes)
    device = device_facts()
    flops = step_flops(params["non_embedding_trainable"], bert, sizes["batch"], sizes["seq"])
    peak, peak_source = peak_flops(device["device_kind"], device["platform"], args.peak_tflops)
    achieved = flops * timing["steps_per_s"]
    return {
        "config": {**{k: bert[k] for k in ("layers", "hidden", "heads", "intermediate",
                                           "vocab")},
                   "batch": sizes["batch"], "seq": sizes["seq"], "columns": sizes["columns"],
                   "question_tokens": sizes["question"], "policy": "mixed_bfloat16",
                   "optimizer": "adam", "link_units": 256, "dropout": 0.1},
        "parameters": params,
        "steps_per_s": round(timing["steps_per_s"], 3),
        "sequences_per_s": round(timing["steps_per_s"] * sizes["batch"], 2),
        "tokens_per_s": round(timing["steps_per_s"] * sizes["batch"] * sizes["seq"], 1),
        "first_step_seconds": timing["first_step_seconds"],
        "all_steps_per_s": timing["all_steps_per_s"],
        "flops_per_step": flops,
        "flops_formula": "6*N*B*S + 12*L*S^2*h*B (PaLM app. B), N = non_embedding_trainable",
        "achieved_tflops": round(achieved / 1e12, 3),
        "peak_tflops": None if peak is None else peak / 1e12,
        "peak_source": peak_source,
        "mfu": None if peak is None else round(achieved / peak, 4),
        "final_loss": round(float(timing["last"]["loss"]), 4),
        **device,
    }


# ---- part 2: VQ-VAE -------------------------------------------------------------------------

def vqvae_config(data_path: str | None = None, path: str = "configs/vqvae/celeba64.yaml"
                 ) -> dict:
    """The config resolved by blogml's schema (defaults filled in); `data.path` must exist,
    so without `data_path` it names this script (part 2 reads no data)."""
    import yaml

    from blogml.tasks.configs import check_config

    raw = yaml.safe_load((REPO / path).read_text(encoding="utf-8"))
    raw["data"]["path"] = data_path or __file__
    values, issues = check_config(raw, path)
    assert not issues, issues
    return values


def part_vqvae(args: argparse.Namespace, sizes: dict) -> dict:
    import numpy as np

    from blogml.data.hdf5 import to_unit_range
    from blogml.models.vqvae import VQVAE
    from blogml.optimizers import build_optimizer

    values = vqvae_config()
    model, codebook = values["model"], values["model"]["codebook"]
    size, batch = sizes["vqvae_size"], sizes["vqvae_batch"] or values["train"]["batch_size"]
    vqvae = VQVAE(image_size=size, z_dim=model["z_dim"], num_codes=model["num_codes"],
                  beta=model["beta"], residual_blocks=model["residual_blocks"],
                  codebook_update=codebook["update"], decay=codebook["decay"],
                  epsilon=codebook["epsilon"], restart_dead_after=codebook["restart_dead_after"],
                  seed=values["seed"])
    vqvae.compile(optimizer=build_optimizer(values["optimizer"]))
    rng = np.random.default_rng(0)
    images = to_unit_range(rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8))
    timing = time_steps(lambda: vqvae.train_on_batch(images, return_dict=True), sizes)
    return {
        "config": {"source": "configs/vqvae/celeba64.yaml", "image_size": size, "batch": batch,
                   "z_dim": model["z_dim"], "num_codes": model["num_codes"],
                   "codebook_update": codebook["update"],
                   "optimizer": values["optimizer"]["name"], "policy": "float32"},
        "parameters": vqvae.count_params(),
        "images_per_s": round(timing["steps_per_s"] * batch, 2),
        "steps_per_s": round(timing["steps_per_s"], 3),
        "first_step_seconds": timing["first_step_seconds"],
        "all_steps_per_s": timing["all_steps_per_s"],
        "final_loss": round(float(timing["last"]["loss"]), 4),
        **device_facts(),
    }


# ---- part 3: two runs sharing the GPU ------------------------------------------------------

def run_logged(command: list[str], log: Path, cwd: Path, timeout: float) -> float:
    """Wall seconds of `command` with its output in `log`; RuntimeError naming the log (and
    its tail) when it fails or times out."""
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        try:
            done = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout, env=dict(os.environ))
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"timed out after {timeout:g} s: {' '.join(command)} "
                               f"(log {log})") from None
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-1500:]
        raise RuntimeError(f"exit {done.returncode}: {' '.join(command)} (log {log}):\n{tail}")
    return seconds


def ray_gpus() -> tuple[float, str]:
    """GPUs a local Ray would find on this node (Ray's own NVIDIA detection), and how."""
    try:
        from ray._private.accelerators import NvidiaGPUAcceleratorManager

        return float(NvidiaGPUAcceleratorManager.get_current_node_num_accelerators()), "ray"
    except Exception as error:  # Ray missing or its private API moved: ask nvidia-smi
        try:
            done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                  timeout=20)
            return float(len(done.stdout.splitlines())), f"nvidia-smi ({error!r} from ray)"
        except (OSError, subprocess.TimeoutExpired):
            return 0.0, f"none ({error!r} from ray; no nvidia-smi)"


def study_configs(folder: Path, sizes: dict) -> list[Path]:
    """Two configs (seeds 0 and 1) in `folder`, validating and checkpointing only at the end;
    VQ-VAE on synthesized faces (made here) or, under --smoke, the optbench MLP."""
    blogml = [sys.executable, "-m", "blogml"]
    if sizes["study_task"] == "vqvae":
        cache = folder / "faces64.h5"
        run_logged([*blogml, "data", "synth", "celeba", "--out", str(folder / "faces"),
                    "--count", str(sizes["study_images"])], folder / "synth.log", folder,
                   sizes["run_timeout"])
        run_logged([*blogml, "data", "prepare", "celeba", "--src", str(folder / "faces"),
                    "--out", str(cache), "--size", "64"], folder / "prepare.log", folder,
                   sizes["run_timeout"])
        base = {key: value for key, value in vqvae_config(data_path=str(cache)).items()
                if key in ("task", "data", "model", "optimizer")}
        train = {"batch_size": 64, "monitor": "val_psnr", "monitor_mode": "max"}
    else:
        base = {"task": "optbench",
                "data": {"num_train": 2048, "num_val": 256, "num_test": 256,
                         "num_features": 16, "num_classes": 5, "label_noise": 0.05},
                "model": {"hidden_units": [64, 64], "activation": "relu", "dropout": 0.0},
                "optimizer": {"name": "adam", "learning_rate": 1e-3}}
        train = {"batch_size": 128, "monitor": "val_accuracy", "monitor_mode": "max"}
    import yaml

    paths = []
    for name, seed in (("a", 0), ("b", 1)):
        config = {**base, "seed": seed, "run_dir": "runs/{config}",
                  "train": {**train, "epochs": sizes["study_epochs"], "log_every": 20,
                            "eval_every": 1_000_000, "checkpoint_every": 1_000_000}}
        if sizes["study_task"] == "vqvae":
            config["train"]["sample_every"] = 1_000_000
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        paths.append(path)
    return paths


def part_study(args: argparse.Namespace, sizes: dict, folder: Path) -> dict:
    folder.mkdir(parents=True)
    configs = study_configs(folder, sizes)
    gpus, detected_by = ray_gpus()
    gpus_per_run = 0.5 if gpus >= 1 else 0.0
    sides = {"sequential": [], "parallel": ["--jobs", "2", "--gpus-per-run", f"{gpus_per_run:g}"]}
    result: dict = {"task": sizes["study_task"], "epochs": sizes["study_epochs"],
                    "ray_gpus": gpus, "ray_gpus_detected_by": detected_by,
                    "gpus_per_run": gpus_per_run, "folder": str(folder)}
    if gpus_per_run == 0:
        result["note"] = ("Ray found no GPU here: the parallel side ran with --gpus-per-run 0 "
                          "(two CPU runs at once), not 0.5")
    for side, options in sides.items():
        cwd = folder / side
        cwd.mkdir()
        command = [sys.executable, "-m", "blogml", "train", *map(str, configs), *options]
        try:
            seconds = run_logged(command, folder / f"{side}.log", cwd, sizes["run_timeout"])
            result[f"{side}_seconds"] = round(seconds, 2)
        except RuntimeError as error:
            result[f"{side}_error"] = str(error)
        runs = {}
        for config in configs:
            summary = cwd / "runs" / config.stem / "summary.json"
            try:
                values = json.loads(summary.read_text(encoding="utf-8"))
                runs[config.stem] = {
                    "status": values["status"], "steps": values["step"],
                    "wall_seconds": values["wall_seconds"],
                    "steps_per_sec": values["steps_per_sec"],
                    "cuda_visible_devices": values["distribution"]["cuda_visible_devices"]}
            except (OSError, ValueError, KeyError) as error:
                runs[config.stem] = {"error": f"{summary}: {error!r}"}
        result[f"{side}_runs"] = runs
    if "sequential_seconds" in result and "parallel_seconds" in result:
        result["ratio_sequential_over_parallel"] = round(
            result["sequential_seconds"] / result["parallel_seconds"], 3)
    return result


# ---- driver ---------------------------------------------------------------------------------

def run_part(name: str, args: argparse.Namespace, sizes: dict) -> dict:
    """One part in a child process (`--part`): its JSON line, or its error."""
    command = [sys.executable, str(Path(__file__).resolve()), "--part", name,
               *(["--smoke"] if args.smoke else []),
               *(["--peak-tflops", str(args.peak_tflops)] if args.peak_tflops else [])]
    start = time.perf_counter()
    log = args.folder / f"{name}.log"
    try:
        with open(log, "w", encoding="utf-8") as err:
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, text=True,
                                  timeout=sizes["part_timeout"], cwd=REPO)
        lines = done.stdout.strip().splitlines()
        if done.returncode == 0 and lines:
            result = json.loads(lines[-1])
        else:
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            result = {"error": f"exit {done.returncode} (log {log}):\n{tail}"}
    except subprocess.TimeoutExpired:
        result = {"error": f"timed out after {sizes['part_timeout']} s (log {log})"}
    except (OSError, ValueError) as error:
        result = {"error": repr(error)}
    result["part_seconds"] = round(time.perf_counter() - start, 1)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes: the whole check in ~2 min on a CPU")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="peak dense bf16 TFLOP/s of the device (default: from its name)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep logs, configs and runs here (default: a temp dir, removed)")
    parser.add_argument("--study-task", choices=("vqvae", "optbench"), default=None,
                        help="part 3's runs (default: vqvae; optbench under --smoke)")
    parser.add_argument("--part", choices=PARTS[:2], help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args(argv)
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        parser.error(f"--parts: unknown {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = dict(SMOKE if args.smoke else FULL)
    if args.study_task:
        sizes["study_task"] = args.study_task
    if args.part:  # child: one part, one JSON line
        part = {"nl2sql": part_nl2sql, "vqvae": part_vqvae}[args.part]
        result = part(args, sizes)
        result["tensorflow_imported"] = "tensorflow" in sys.modules
        print(json.dumps(result))
        return
    start = time.perf_counter()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        args.folder = Path(tempfile.mkdtemp(prefix="gpu-check-", dir=args.workdir))
    else:
        args.folder = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    results: dict = {}
    try:
        for name in args.parts.split(","):
            if name == "study":
                part_start = time.perf_counter()
                try:
                    results[name] = part_study(args, sizes, args.folder / "study")
                except Exception as error:  # recorded; the other parts' figures still count
                    results[name] = {"error": f"{type(error).__name__}: {error}"}
                results[name]["part_seconds"] = round(time.perf_counter() - part_start, 1)
            else:
                results[name] = run_part(name, args, sizes)
    finally:
        if not args.workdir:
            shutil.rmtree(args.folder, ignore_errors=True)
            results.get("study", {}).pop("folder", None)  # removed: only --workdir keeps it
    print(json.dumps({
        "benchmark": "gpu_check",
        "smoke": args.smoke,
        "backend": os.environ.get("KERAS_BACKEND"),
        "xla_python_client_preallocate": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"),
        **results,
        "total_seconds": round(time.perf_counter() - start, 1),
        "workdir": str(args.folder) if args.workdir else None,
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }))


if __name__ == "__main__":
    main()
