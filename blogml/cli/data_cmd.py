"""`blogml data synth|prepare|check`: demo data in the real formats, HDF5 caches for
training, and the NL2SQL data report.

Parses and reports only; the work is in blogml.data (imported per command, so `--help`
stays fast).
"""

from __future__ import annotations

import json
import re
from typing import Any

import click

SHOWN_REJECTS = 20  # rejected images listed on the terminal; the HDF5 file has them all
SHOWN_INVALID = 20  # invalid NL2SQL records listed on the terminal; --json has them all


def _width_height(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", value)
    if not match:
        raise click.BadParameter(f"{value!r}: expected WIDTHxHEIGHT, e.g. 178x218")
    return int(match[1]), int(match[2])


@click.group()
def data() -> None:
    """Datasets: demo data in the real formats, and caches to train from."""


@data.group()
def synth() -> None:
    """Write small demo datasets in the real formats (no download)."""


@synth.command("celeba")
@click.option("--out", required=True, metavar="DIR", help="Folder to write into.")
@click.option("--count", default=600, show_default=True, type=click.IntRange(min=1),
              help="Number of images.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Same seed, byte-identical files.")
@click.option("--size", default="178x218", show_default=True, metavar="WxH",
              callback=_width_height, help="Image size (aligned CelebA: 178x218).")
def synth_celeba(out: str, count: int, seed: int, size: tuple[int, int]) -> None:
    """Procedural faces in CelebA's layout: DIR/img_align_celeba/000001.jpg ... and
    DIR/list_eval_partition.txt (about 80/10/10 train/val/test)."""
    from blogml.data.celeba import IMAGE_FOLDER, PARTITION_FILE
    from blogml.data.celeba import synth_celeba as write

    counts = write(out, count, seed, size)
    click.echo(f"wrote {count} images of {size[0]}x{size[1]} to {out}/{IMAGE_FOLDER}/ and "
               f"{out}/{PARTITION_FILE}: "
               + ", ".join(f"{split} {n}" for split, n in counts.items()))


@synth.command("nl2sql")
@click.option("--out", required=True, metavar="DIR", help="Folder to write into.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Same seed, byte-identical files.")
@click.option("--train", "train_count", default=12000, show_default=True,
              type=click.IntRange(min=1), help="Training questions.")
@click.option("--val", "val_count", default=300, show_default=True, type=click.IntRange(min=1),
              help="Validation questions.")
@click.option("--test", "test_count", default=300, show_default=True,
              type=click.IntRange(min=1), help="Test questions (written without sql).")
def synth_nl2sql(out: str, seed: int, train_count: int, val_count: int,
                 test_count: int) -> None:
    """Templated Chinese questions over small tables in the competition's layout:
    DIR/{train,val,test}/{split}.json, {split}.tables.json and {split}.db (SQLite)."""
    from blogml.data.nl2sql_synth import synth_nl2sql as write

    written = write(out, seed, {"train": train_count, "val": val_count, "test": test_count})
    click.echo(f"wrote {out}: " + ", ".join(f"{split} {questions} questions on {tables} tables"
                                           for split, (questions, tables) in written.items())
               + f"; check it with `blogml data check nl2sql {out}`")


@data.group()
def check() -> None:
    """Report on a dataset: counts, invalid records, and what training can use."""


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


@check.command("nl2sql")
@click.argument("directory", metavar="DIR")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object with every invalid record, instead of the table.")
@click.option("--ceiling", is_flag=True,
              help="Also encode each split's gold SQL as training labels, decode them back "
                   "and score them: the best LF/EX any model can reach through this pipeline.")
@click.option("--vocab", default=None, metavar="PATH",
              help="vocab.txt to tokenise with for --ceiling  [default: the Chinese BERT "
                   "vocab shipped with blogml]")
@click.option("--max-length", default=160, show_default=True, type=click.IntRange(16, 512),
              help="data.max_length for --ceiling.")
def check_nl2sql(directory: str, as_json: bool, ceiling: bool, vocab: str | None,
                 max_length: int) -> None:
    """Per split in DIR (train, val, test): questions and tables, invalid records (file,
    line, reason), and how condition values align with the question text, by kind (train
    and val only, test has no sql); with --ceiling, the pipeline's ceiling (LF, EX, score
    of the labels decoded back, with the default decoding rules).

    Exit 0 with a report, invalid records included; exit 2 if DIR holds no split.
    """
    from blogml.cli.table import render_table
    from blogml.data.nl2sql_report import check_dataset
    from blogml.data.nl2sql_values import KINDS

    report = check_dataset(directory)
    if ceiling:
        from blogml.data.wordpiece import CHINESE_VOCAB
        from blogml.runners.nl2sql.ceiling import add_ceilings

        report = add_ceilings(report, directory, vocab or CHINESE_VOCAB, max_length)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    splits: dict[str, Any] = report["splits"]
    rows = []
    for name, split in splits.items():
        alignment = split["alignment"] or {}
        bounds = split.get("ceiling") or {}
        rows.append([name, str(split["questions"]), str(split["tables"]),
                     str(len(split["invalid"])),
                     *(_percent(alignment.get(kind)) for kind in KINDS),
                     _percent(split["questions_aligned"]),
                     *([_percent(bounds.get("lf_accuracy")), _percent(bounds.get("ex_accuracy"))]
                       if ceiling else []),
                     "yes" if split["db"] and not split["db_problems"] else
                     ("missing" if not split["db"] else f"{len(split['db_problems'])} problems")])
    click.echo(f"NL2SQL data in {directory} (alignment: share of condition values)")
    click.echo(render_table(["split", "questions", "tables", "invalid", *KINDS,
                             "aligned questions",
                             *(["ceiling LF", "ceiling EX"] if ceiling else []), "db"], rows))
    invalid = [f"{record['path']}:{record['line']}: {record['reason']}"
               for split in splits.values() for record in split["invalid"]]
    _list_some(invalid, "invalid record", "left out of training and evaluation")
    _list_some([problem for split in splits.values() for problem in split["db_problems"]],
               "database problem", "execution accuracy cannot run on these tables")


def _list_some(items: list[str], what: str, consequence: str) -> None:
    """A count, then the first SHOWN_INVALID items (--json has them all)."""
    if not items:
        return
    click.echo(f"\n{len(items)} {what}{'s' if len(items) > 1 else ''} ({consequence}):")
    for item in items[:SHOWN_INVALID]:
        click.echo(f"  {item}")
    if len(items) > SHOWN_INVALID:
        click.echo(f"  ... and {len(items) - SHOWN_INVALID} more (all with --json)")


@data.group()
def prepare() -> None:
    """Convert a dataset into the cache training reads."""


@prepare.command("celeba")
@click.option("--src", required=True, metavar="DIR",
              help="The CelebA folder (holding img_align_celeba/), or any folder of "
                   ".jpg/.jpeg/.png images.")
@click.option("--out", required=True, metavar="FILE.h5", help="The HDF5 file to write.")
@click.option("--size", default="64", show_default=True, type=click.Choice(["64", "128"]),
              help="Side of the square images stored.")
@click.option("--crop", type=click.IntRange(min=1), metavar="PX",
              help="Side of the centred square cut before resizing  [default: 140 for "
                   "img_align_celeba/, else the largest centred square]")
@click.option("--split-file", metavar="PATH",
              help="Partition lines '<image> <0|1|2>' (0 train, 1 val, 2 test)  [default: "
                   "DIR/list_eval_partition.txt if present, else a random 80/10/10 split]")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed of the random split (used without a partition file).")
def prepare_celeba(src: str, out: str, size: str, crop: int | None, split_file: str | None,
                   seed: int) -> None:
    """Centre-crop, resize (Lanczos) and store the images of DIR as uint8 arrays, one
    dataset per split (train, val, test), in FILE.h5.

    Resumable: after a kill or Ctrl-C, the same command continues where it stopped.
    Unreadable images are skipped and listed (exit 0); exit 2 if none could be read.
    """
    from blogml.data.celeba import prepare_celeba as convert
    from blogml.runners.console import interactive

    prepared = convert(src, out, int(size), crop, split_file, seed,
                       notify=lambda message: click.echo(message, err=True),
                       progress_bar=interactive())
    crop_text = f"{prepared.crop} px" if prepared.crop else "largest square"
    click.echo(f"wrote {prepared.path}: {prepared.size}x{prepared.size}, "
               + ", ".join(f"{split} {n}" for split, n in prepared.counts.items())
               + f" (centre crop {crop_text}, Lanczos)")
    if prepared.rejected:
        count = len(prepared.rejected)
        click.echo(f"skipped {count} image{'s' if count > 1 else ''} that could not be "
                   f"converted (all listed in {prepared.path} under rejected/):", err=True)
        for name, reason in prepared.rejected[:SHOWN_REJECTS]:
            click.echo(f"  {name}: {reason}", err=True)
        if count > SHOWN_REJECTS:
            click.echo(f"  ... and {count - SHOWN_REJECTS} more", err=True)
