"""VQ-VAE training: `blogml train` images/s ÷ a bare `model.fit` of the same model (≥ 0.97).

Both sides train the same architecture (the demo config's: z_dim 64, 512 EMA codes with
restarts, 64x64) on the same synthesized faces in this process, alternating: the runner
streams them from the HDF5 cache (shuffled, prefetched, with its logging, validation and
checkpoints), `model.fit` gets them as an in-memory array. Each side is timed for a short
and a long run and the rate taken from the difference, so fixed costs (tracing, the
runner's final evaluation, samples and plots) cancel. The runner validates only at the end,
as in runner_overhead (validating every epoch is work the bare fit does not do). Prints one
JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CI", "true")  # no progress bars: time the work, not the terminal

import h5py  # noqa: E402
import yaml  # noqa: E402
from runner_overhead import train_seconds  # noqa: E402
from vqvae_input import make_demo_cache  # noqa: E402

from blogml.tasks.configs import check_config  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHORT_EPOCHS, LONG_EPOCHS, BATCH_SIZE, IMAGES = 1, 3, 32, 1024


def config(cache: Path, epochs: int) -> dict:
    raw = yaml.safe_load((REPO / "configs/vqvae/demo.yaml").read_text())
    raw["data"]["path"] = str(cache)
    # Validate (and draw samples) once, at the end, as runner_overhead does: the difference
    # of a long and a short run then cancels it, and the bare fit validates nothing.
    raw["train"].update(epochs=epochs, batch_size=BATCH_SIZE, log_every=50,
                        eval_every=epochs * (IMAGES // BATCH_SIZE), sample_every=10_000)
    values, issues = check_config(raw, "vqvae_train")
    assert not issues, issues
    return values


def time_runner(cache: Path, epochs: int, root: Path) -> float:
    return train_seconds(config(cache, epochs), root)


def time_fit(images, cache: Path, epochs: int) -> float:
    import keras

    from blogml.models.vqvae import VQVAE
    from blogml.optimizers import build_optimizer

    values = config(cache, epochs)
    model, codebook = values["model"], values["model"]["codebook"]
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    vqvae = VQVAE(image_size=64, z_dim=model["z_dim"], num_codes=model["num_codes"],
                  beta=model["beta"], codebook_update=codebook["update"],
                  decay=codebook["decay"], epsilon=codebook["epsilon"],
                  restart_dead_after=codebook["restart_dead_after"])
    vqvae.compile(optimizer=build_optimizer(values["optimizer"]))
    start = time.perf_counter()
    vqvae.fit(images, batch_size=BATCH_SIZE, epochs=epochs, shuffle=True, verbose=0)
    return time.perf_counter() - start


def main(repeats: int = 3) -> None:
    from blogml.data.hdf5 import to_unit_range

    with tempfile.TemporaryDirectory() as folder:
        cache = make_demo_cache(Path(folder), IMAGES)
        with h5py.File(cache, "r") as handle:
            images = to_unit_range(handle["train"][()])
        steps = (LONG_EPOCHS - SHORT_EPOCHS) * (len(images) // BATCH_SIZE)
        runner_rates, fit_rates = [], []
        time_runner(cache, SHORT_EPOCHS, Path(folder))  # warm-up
        time_fit(images, cache, SHORT_EPOCHS)
        for _ in range(repeats):
            runner_rates.append(steps * BATCH_SIZE / (
                time_runner(cache, LONG_EPOCHS, Path(folder))
                - time_runner(cache, SHORT_EPOCHS, Path(folder))))
            fit_rates.append(steps * BATCH_SIZE / (time_fit(images, cache, LONG_EPOCHS)
                                                   - time_fit(images, cache, SHORT_EPOCHS)))
    import keras

    # The median of each round's ratio, as in runner_overhead.
    ratio = statistics.median(r / f for r, f in zip(runner_rates, fit_rates))
    print(json.dumps({
        "benchmark": "vqvae_train",
        "backend": keras.backend.backend(),
        "model": "configs/vqvae/demo.yaml (z_dim 64, 512 EMA codes), 64x64, batch 32",
        "runner_images_per_sec": round(statistics.median(runner_rates), 1),
        "fit_images_per_sec": round(statistics.median(fit_rates), 1),
        "ratio": round(ratio, 3),
        "target_ratio": 0.97,
        "meets_target": ratio >= 0.97,
        "runner_all": [round(r, 1) for r in runner_rates],
        "fit_all": [round(r, 1) for r in fit_rates],
        "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
