"""`blogml sample` and `blogml predict`: outputs of a trained run, from one of its checkpoints."""

from __future__ import annotations

from pathlib import Path

import click

checkpoint_option = click.option(
    "--checkpoint", default="best", show_default=True, metavar="best|last|PATH",
    help="Which weights: checkpoints/best, checkpoints/last, or a checkpoint folder or file.")


def _trained_runner(run_dir: str, checkpoint: str):
    from blogml.runners.launch import trained_runner

    return trained_runner(run_dir, checkpoint)[0]


@click.command()
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("-n", "count", default=64, show_default=True, type=click.IntRange(1, 1024),
              help="How many images.")
@click.option("--temperature", default=1.0, show_default=True,
              type=click.FloatRange(0.0, min_open=True), help="Sampling temperature.")
@click.option("--seed", default=0, show_default=True, type=int, help="Sampling seed.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="PNG to write (default: RUN_DIR/samples/sample_n<N>_t<T>_seed<S>.png).")
@checkpoint_option
def sample(run_dir: str, count: int, temperature: float, seed: int, output: str | None,
           checkpoint: str) -> None:
    """Draw COUNT new images from the prior in RUN_DIR as one PNG grid."""
    runner = _trained_runner(run_dir, checkpoint)
    path = Path(output) if output else (Path(run_dir) / "samples"
                                        / f"sample_n{count}_t{temperature:g}_seed{seed}.png")
    click.echo(str(runner.sample(path, count, temperature, seed)))


@click.command()
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True),
              help="What to predict on (a folder of images or an HDF5 cache, for vqvae).")
@click.option("--output", "output_path", required=True, type=click.Path(),
              help="Where to write the predictions.")
@checkpoint_option
def predict(run_dir: str, input_path: str, output_path: str, checkpoint: str) -> None:
    """Write the predictions of the run in RUN_DIR for INPUT to OUTPUT."""
    runner = _trained_runner(run_dir, checkpoint)
    click.echo(str(runner.predict(Path(input_path), Path(output_path))))
