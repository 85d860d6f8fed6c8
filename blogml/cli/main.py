"""`blogml` entry point. Imports nothing heavy: each command imports what it needs."""

from __future__ import annotations

import sys
from typing import Any

import click

from blogml import __version__
from blogml.errors import (
    EXIT_INTERRUPTED,
    BlogmlError,
    describe_os_error,
    os_error_exit_code,
)


class BlogmlGroup(click.Group):
    """Turns user-facing errors, and file systems that refuse a write, into a message and
    an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BlogmlError as error:
            click.echo(f"error: {error}" if "\n" not in str(error) else f"error:\n{error}",
                       err=True)
            sys.exit(error.exit_code)
        except OSError as error:  # a file system that refuses: read-only, full, no permission
            click.echo(f"error: {describe_os_error(error)}", err=True)
            sys.exit(os_error_exit_code(error))
        except KeyboardInterrupt:  # Ctrl-C outside a training loop (which handles its own)
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)


@click.group(cls=BlogmlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="blogml")
def cli() -> None:
    """blogml: a YAML config in, a finished deep-learning experiment out.

    Train with `blogml train CONFIG`; everything a run produces lands in its run
    directory (checkpoints, metrics.jsonl, TensorBoard, plots, summary.json).
    """


def _register() -> None:
    from blogml.cli import (
        bench_cmd,
        config_cmd,
        data_cmd,
        eval_cmd,
        runs_cmd,
        sample_cmd,
        score_cmd,
        train_cmd,
    )

    cli.add_command(train_cmd.train)
    cli.add_command(eval_cmd.evaluate)
    cli.add_command(runs_cmd.runs)
    cli.add_command(config_cmd.config)
    cli.add_command(bench_cmd.bench)
    cli.add_command(sample_cmd.predict)
    cli.add_command(sample_cmd.sample)
    cli.add_command(data_cmd.data)
    cli.add_command(score_cmd.score)


_register()


def main() -> None:
    cli(prog_name="blogml")
