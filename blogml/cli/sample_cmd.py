"""`blogml sample` and `blogml predict`: outputs of a trained run, from one of its checkpoints."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import click

from blogml.errors import BlogmlError

checkpoint_option = click.option(
    "--checkpoint", default="best", show_default=True, metavar="best|last|PATH",
    help="Which weights: checkpoints/best, checkpoints/last, or a checkpoint folder or file.")


def _check_writable(path: Path, option: str) -> None:
    """BlogmlError unless `path` can be written: the folder that would receive it (the path
    itself when it is a folder, else its nearest existing ancestor, whose missing subfolders
    are created) must be a folder this user may write in. Checked before the run is loaded:
    loading a run (a prior loads its VQ-VAE too) takes seconds to minutes, and a mistyped
    --output must cost none of them and leave nothing behind."""
    folder = path if path.is_dir() else next(p for p in path.parents if p.exists())
    if not folder.is_dir():
        raise BlogmlError(f"{option} {path}: {folder} is a file, not a folder; choose another "
                          "path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BlogmlError(f"{option} {path}: cannot write in {folder} (read-only or no "
                          "permission); make it writable for you, or choose another folder")


def _trained_runner(run_dir: str, checkpoint: str):
    from blogml.runners.building import trained_runner

    return trained_runner(run_dir, checkpoint)[0]


@contextlib.contextmanager
def _warnings_on_stderr() -> Iterator[None]:
    """Show the `blogml` logger's warnings (inputs skipped, lines that got an empty
    prediction) on stderr, above any progress bar. Only warnings: the info lines are the
    training data's report, which loading the run repeats and nobody predicting needs."""
    from blogml.runners.console import run_logging

    with run_logging(None, logging.WARNING):
        yield


@click.command()
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("-n", "count", default=64, show_default=True, type=click.IntRange(1, 1024),
              help="How many images.")
@click.option("--temperature", default=1.0, show_default=True,
              type=click.FloatRange(0.0, min_open=True), help="Sampling temperature.")
@click.option("--seed", default=0, show_default=True, type=int, help="Sampling seed.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="PNG to write (default: RUN_DIR/samples/sample_n<N>_t<T>_seed<S>.png); "
                   "missing folders are created.")
@checkpoint_option
def sample(run_dir: str, count: int, temperature: float, seed: int, output: str | None,
           checkpoint: str) -> None:
    """Draw COUNT new images from the prior in RUN_DIR as one PNG grid."""
    path = Path(output) if output else (Path(run_dir) / "samples"
                                        / f"sample_n{count}_t{temperature:g}_seed{seed}.png")
    if path.suffix.lower() != ".png":
        raise BlogmlError(f"--output {path}: the grid is a PNG; give a path ending in .png")
    _check_writable(path, "--output")
    with _warnings_on_stderr():
        runner = _trained_runner(run_dir, checkpoint)
        click.echo(str(runner.sample(path, count, temperature, seed)))


@click.command()
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True),
              help="What to predict on: for vqvae a folder of images (unreadable ones are "
                   "skipped and listed) or an HDF5 cache of the run's image size (its test "
                   "split; a cache of another size is refused, not resized: predict on the "
                   "image folder instead); for nl2sql a questions file.")
@click.option("--output", "output_path", required=True, type=click.Path(),
              help="Where to write the predictions: a folder for vqvae, a file for nl2sql "
                   "(missing folders are created).")
@checkpoint_option
def predict(run_dir: str, input_path: str, output_path: str, checkpoint: str) -> None:
    """Write the predictions of the run in RUN_DIR for INPUT to OUTPUT."""
    _check_writable(Path(output_path), "--output")
    with _warnings_on_stderr():
        runner = _trained_runner(run_dir, checkpoint)
        click.echo(str(runner.predict(Path(input_path), Path(output_path))))
