"""Data problems are refused before any compute is spent and before any run dir exists.

Each case breaks a copy of the small fixture data (an image cache, NL2SQL files, a BERT
folder, a VQ-VAE run) in one way and asserts that `blogml train CONFIG` exits 2 with a
message naming the file or config key, prints no traceback, creates no `runs/` and
changes nothing that existed (`unchanged` watches the whole working folder and the
fixtures). The checks run without Keras; only the few tests that train import it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml

from blogml.config.loader import dump_config
from blogml.data.nl2sql import load_split
from blogml.runners.nl2sql.features import shortest_input
from blogml.tasks.configs import check_config
from tests.bad_inputs.harness import assert_refused, invoke
from tests.conftest import tiny_config

# ---- configs and data -------------------------------------------------------------------


def write_yaml(path: Path, values: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(values, allow_unicode=True, sort_keys=False))
    return path


def vqvae_values(cache: Path | str, name: str = "vq", **train: Any) -> dict[str, Any]:
    return {"task": "vqvae", "seed": 0, "run_dir": f"runs/{name}", "data": {"path": str(cache)},
            "model": {"z_dim": 8, "num_codes": 8, "residual_blocks": 1},
            "optimizer": {"name": "adam", "learning_rate": 2e-3},
            "train": {"epochs": 1, "batch_size": 16, "log_every": 1, "sample_count": 4,
                      **train}}


def prior_values(vqvae_run: Path | str, name: str = "prior", checkpoint: str = "best",
                 **train: Any) -> dict[str, Any]:
    return {"task": "vqvae_prior", "seed": 0, "run_dir": f"runs/{name}",
            "data": {"vqvae_run": str(vqvae_run), "checkpoint": checkpoint},
            "model": {"hidden": 16, "layers": 1, "heads": 2, "dropout": 0.0},
            "optimizer": {"name": "adam", "learning_rate": 3e-3},
            "train": {"epochs": 1, "batch_size": 16, "log_every": 1, "sample_count": 4,
                      **train}}


def nl2sql_values(root: Path | str, name: str = "nl", model: dict | None = None,
                  max_length: int = 96, **train: Any) -> dict[str, Any]:
    return {"task": "nl2sql", "seed": 0, "run_dir": f"runs/{name}",
            "data": {"root": str(root), "max_length": max_length},
            "model": {"hidden_size": 16, "layers": 1, "heads": 2, "intermediate_size": 16,
                      "dropout": 0.0, "link_units": 8, **(model or {})},
            "optimizer": {"name": "adam", "learning_rate": 1e-3},
            "train": {"epochs": 1, "batch_size": 8, "log_every": 1, **train}}


def cache(path: Path, size: int | None = None, **splits: np.ndarray) -> Path:
    """An image cache with these splits (and `blogml data prepare`'s size attribute)."""
    with h5py.File(path, "w") as h5:
        for name, images in splits.items():
            h5.create_dataset(name, data=images)
        if size is not None:
            h5.attrs["size"] = size
    return path


def fake_run(folder: Path, values: dict[str, Any], checkpoint: bytes | None = None) -> Path:
    """A run dir as `blogml train` leaves it, as far as the checks read it: config.yaml and,
    with `checkpoint`, checkpoints/best/checkpoint.h5 (b"" for a valid empty one)."""
    resolved, issues = check_config(values, "fake")
    assert not issues, issues
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(dump_config(resolved))
    if checkpoint is not None:
        path = folder / "checkpoints" / "best" / "checkpoint.h5"
        path.parent.mkdir(parents=True)
        if checkpoint:
            path.write_bytes(checkpoint)
        else:
            with h5py.File(path, "w") as handle:
                handle.attrs["meta"] = json.dumps({"loop": {"step": 1}})
    return folder


@dataclass
class Env:
    """What a case builds its broken data from; each fixture is made only when asked, and
    remembered in `sources`, to be watched as well."""

    tmp: Path
    request: pytest.FixtureRequest
    sources: list[Path] = field(default_factory=list)

    def fixture(self, name: str) -> Path:
        path = self.request.getfixturevalue(name)
        self.sources.append(path)
        return path

    def images(self) -> dict[str, np.ndarray]:
        with h5py.File(self.fixture("faces"), "r") as h5:
            return {split: h5[split][()] for split in ("train", "val")}

    def nl2sql(self) -> Path:
        root = self.tmp / "nl2sql"
        shutil.copytree(self.fixture("demo_data"), root)
        return root

    def config(self, values: dict[str, Any], name: str = "case") -> Path:
        return write_yaml(self.tmp / f"{name}.yaml", values)


Case = Callable[[Env], tuple[Path, tuple[str, ...]]]  # -> (config, what the message names)


# ---- vqvae: the image cache ------------------------------------------------------------


def no_val_split(env: Env):
    path = cache(env.tmp / "faces.h5", 64, train=env.images()["train"])
    return env.config(vqvae_values(path)), ("data.val_split", "no split 'val'", str(path))


def empty_val_split(env: Env):
    images = env.images()
    path = cache(env.tmp / "faces.h5", 64, train=images["train"], val=images["val"][:0])
    return env.config(vqvae_values(path)), ("data.val_split", "is empty", str(path))


def non_square_images(env: Env):
    images = env.images()
    path = cache(env.tmp / "faces.h5", train=images["train"][:, :, :48],
                 val=images["val"][:, :, :48])
    return env.config(vqvae_values(path)), ("data.train_split", "64x48", "not square",
                                            str(path))


def splits_of_two_sizes(env: Env):
    images = env.images()
    path = cache(env.tmp / "faces.h5", train=images["train"], val=images["val"][:, ::2, ::2])
    return env.config(vqvae_values(path)), ("data.val_split", "32px", "64px", str(path))


def images_not_of_the_cache_size(env: Env):
    images = env.images()
    path = cache(env.tmp / "faces.h5", 128, train=images["train"], val=images["val"])
    return env.config(vqvae_values(path)), ("data.train_split", "prepared at size 128",
                                            str(path))


def float_images(env: Env):
    images = env.images()
    path = cache(env.tmp / "faces.h5", 64, train=images["train"].astype(np.float32),
                 val=images["val"])
    return env.config(vqvae_values(path)), ("data.train_split", "not uint8", str(path))


def text_file_named_h5(env: Env):
    path = env.tmp / "faces.h5"
    path.write_text("these are not images\n")
    return env.config(vqvae_values(path)), ("data.path", str(path), "not a readable HDF5 file",
                                            "blogml data prepare celeba")


def folder_named_h5(env: Env):
    path = env.tmp / "faces.h5"
    path.mkdir()
    return env.config(vqvae_values(path)), ("data.path", str(path), "a folder")


def fewer_images_than_a_batch(env: Env):
    images = env.images()
    path = cache(env.tmp / "faces.h5", 64, train=images["train"][:10], val=images["val"])
    return env.config(vqvae_values(path)), ("train.batch_size", "exceeds the 10 images",
                                            str(path))


def fewer_val_images_than_the_sample_grid(env: Env):
    images = env.images()
    path = cache(env.tmp / "faces.h5", 64, train=images["train"], val=images["val"][:3])
    return env.config(vqvae_values(path, sample_count=4)), ("train.sample_count", "has 3",
                                                            str(path))


# ---- nl2sql: questions, databases, vocab, BERT folder ----------------------------------


def no_val_db(env: Env):
    root = env.nl2sql()
    (root / "val" / "val.db").unlink()
    return env.config(nl2sql_values(root)), ("data.root", str(root / "val" / "val.db"))


def val_db_without_a_table(env: Env):
    root = env.nl2sql()
    with sqlite3.connect(root / "val" / "val.db") as connection:
        (table,) = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                      "LIMIT 1").fetchone()
        connection.execute(f'DROP TABLE "{table}"')
    connection.close()
    return env.config(nl2sql_values(root)), ("data.root", "val.db", table,
                                             "is not in the database")


def val_db_not_sqlite(env: Env):
    root = env.nl2sql()
    (root / "val" / "val.db").write_text("not a database")
    return env.config(nl2sql_values(root)), ("data.root", "val.db", "not a SQLite database")


def empty_train_file(env: Env):
    root = env.nl2sql()
    (root / "train" / "train.json").write_text("")
    return env.config(nl2sql_values(root)), ("data.root", str(root / "train" / "train.json"),
                                             "no usable train question")


def only_invalid_val_questions(env: Env):
    root = env.nl2sql()
    (root / "val" / "val.json").write_text("not json\n{\"question\": \"no table\"}\n")
    return env.config(nl2sql_values(root)), ("data.root", "no usable val question",
                                             f"{root / 'val' / 'val.json'}:1")


def no_tables_file(env: Env):
    root = env.nl2sql()
    (root / "train" / "train.tables.json").unlink()
    return env.config(nl2sql_values(root)), ("data.root",
                                             str(root / "train" / "train.tables.json"))


def vocab_not_a_vocab(env: Env):
    root, vocab = env.nl2sql(), env.tmp / "vocab.txt"
    vocab.write_text("just\nwords\n")
    return env.config(nl2sql_values(root, model={"vocab": str(vocab)})), (
        "model.vocab", str(vocab), "not a BERT vocab.txt")


def vocab_not_utf8(env: Env):
    root, vocab = env.nl2sql(), env.tmp / "vocab.txt"
    vocab.write_bytes(b"[PAD]\n\xff\xfe\n")
    return env.config(nl2sql_values(root, model={"vocab": str(vocab)})), (
        "model.vocab", str(vocab), "not UTF-8")


def pretrained_without_weights(env: Env):
    root, bert = env.nl2sql(), env.tmp / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"vocab_size": 21128}))
    shutil.copy(Path(__file__).parents[2] / "blogml/assets/bert_chinese_vocab.txt",
                bert / "vocab.txt")
    return env.config(nl2sql_values(root, model={"pretrained": str(bert)})), (
        "model.pretrained", str(bert), "no BERT weights", "model.safetensors")


def pretrained_config_not_json(env: Env):
    root, bert = env.nl2sql(), env.tmp / "bert"
    bert.mkdir()
    (bert / "config.json").write_text("{\"vocab_size\": ")
    (bert / "model.safetensors").write_bytes(b"weights")
    shutil.copy(Path(__file__).parents[2] / "blogml/assets/bert_chinese_vocab.txt",
                bert / "vocab.txt")
    return env.config(nl2sql_values(root, model={"pretrained": str(bert)})), (
        "model.pretrained", str(bert / "config.json"), "not a readable BERT config")


def max_length_fits_no_question(env: Env):
    root = env.nl2sql()
    narrowest = min(columns(root))
    wide = [line for line, width in zip((root / "train" / "train.json").read_text().splitlines(),
                                        columns(root)) if width > narrowest]
    (root / "train" / "train.json").write_text("\n".join(wide) + "\n")
    needed = shortest_input(min(columns(root)))
    return env.config(nl2sql_values(root, max_length=needed - 1)), (
        "data.max_length", "fits no training question", f"raise data.max_length to {needed}")


def columns(root: Path) -> list[int]:
    """The column count of each training question's table, in file order."""
    train = load_split(root, "train")
    return [len(train.table_of(question).header) for question in train.questions]


def fewer_questions_than_a_batch(env: Env):
    root = env.nl2sql()
    count = len(load_split(root, "train").questions)
    return env.config(nl2sql_values(root, batch_size=count + 1)), (
        "train.batch_size", f"the {count} training questions")


# ---- vqvae_prior: the VQ-VAE run -------------------------------------------------------


def prior_of_an_optbench_run(env: Env):
    run = fake_run(env.tmp / "done" / "opt", tiny_config())
    return env.config(prior_values(run)), ("data.vqvae_run", str(run), "optbench")


def prior_of_a_run_without_checkpoint(env: Env):
    run = fake_run(env.tmp / "done" / "vq", vqvae_values(env.fixture("faces")))
    return env.config(prior_values(run)), ("data.checkpoint",
                                           str(run / "checkpoints/best/checkpoint.h5"))


def prior_of_a_corrupt_checkpoint(env: Env):
    run = fake_run(env.tmp / "done" / "vq", vqvae_values(env.fixture("faces")),
                   checkpoint=b"garbage")
    return env.config(prior_values(run)), ("data.checkpoint", "corrupt",
                                           str(run / "checkpoints/best/checkpoint.h5"))


def prior_of_no_run(env: Env):
    return env.config(prior_values(env.tmp / "done" / "vq")), (
        "data.vqvae_run", str(env.tmp / "done" / "vq"), "does not exist")


def prior_of_a_folder_that_is_not_a_run(env: Env):
    (env.tmp / "done" / "vq").mkdir(parents=True)
    return env.config(prior_values(env.tmp / "done" / "vq")), (
        "data.vqvae_run", "not a run directory (no config.yaml)")


def prior_of_a_run_whose_data_is_gone(env: Env):
    images = env.images()
    path = cache(env.tmp / "faces.h5", 64, **images)
    run = fake_run(env.tmp / "done" / "vq", vqvae_values(path), checkpoint=b"")
    path.unlink()
    return env.config(prior_values(run)), ("data.vqvae_run", str(run), "data.path", str(path))


def prior_batch_larger_than_the_images(env: Env):
    images = env.images()
    path = cache(env.tmp / "faces.h5", 64, train=images["train"][:20], val=images["val"])
    run = fake_run(env.tmp / "done" / "vq", vqvae_values(path), checkpoint=b"")
    return env.config(prior_values(run, batch_size=32)), ("train.batch_size",
                                                          "exceeds the 20 images", str(path))


CASES: list[Case] = [
    no_val_split, empty_val_split, non_square_images, splits_of_two_sizes,
    images_not_of_the_cache_size, float_images, text_file_named_h5, folder_named_h5,
    fewer_images_than_a_batch, fewer_val_images_than_the_sample_grid,
    no_val_db, val_db_without_a_table, val_db_not_sqlite, empty_train_file,
    only_invalid_val_questions, no_tables_file, vocab_not_a_vocab, vocab_not_utf8,
    pretrained_without_weights, pretrained_config_not_json, max_length_fits_no_question,
    fewer_questions_than_a_batch,
    prior_of_an_optbench_run, prior_of_a_run_without_checkpoint, prior_of_a_corrupt_checkpoint,
    prior_of_no_run, prior_of_a_folder_that_is_not_a_run, prior_of_a_run_whose_data_is_gone,
    prior_batch_larger_than_the_images,
]
SOME = [text_file_named_h5, no_val_split, no_val_db, pretrained_without_weights,
        prior_of_an_optbench_run]


def watched(env: Env, unchanged: list[Path]) -> None:
    """Everything there is: the working folder (configs, broken copies, old runs) and the
    fixtures the copies came from."""
    for path in [env.tmp, *env.sources]:
        unchanged.append(path)


@pytest.fixture
def env(in_tmp: Path, request: pytest.FixtureRequest) -> Env:
    return Env(in_tmp, request)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_train_refuses_broken_data_before_any_run_dir_exists(case, env, unchanged):
    config, named = case(env)
    watched(env, unchanged)
    outcome = invoke("train", str(config))
    assert_refused(outcome, 2, str(config), *named)
    assert not (env.tmp / "runs").exists()


@pytest.mark.parametrize("case", SOME, ids=lambda case: case.__name__)
def test_config_check_data_refuses_the_same_and_plain_check_does_not_open_files(
        case, env, unchanged):
    config, named = case(env)
    watched(env, unchanged)
    assert_refused(invoke("config", "check", "--data", str(config)), 2, str(config), *named)
    plain = invoke("config", "check", str(config))
    assert plain.exit_code == 0 and f"{config}: ok" in plain.output, plain.output
    assert not (env.tmp / "runs").exists()


def test_a_study_with_broken_data_in_its_second_config_starts_nothing(env, unchanged):
    images = env.images()
    good = cache(env.tmp / "good.h5", 64, **images)
    broken = cache(env.tmp / "broken.h5", 64, train=images["train"][:10])
    configs = [write_yaml(env.tmp / "a.yaml", tiny_config()),
               env.config(vqvae_values(broken, "b"), "b"),
               env.config(vqvae_values(good, "c"), "c")]
    watched(env, unchanged)
    outcome = invoke("train", *map(str, configs))
    assert_refused(outcome, 2, f"{configs[1]}: data.val_split", "no split 'val'",
                   f"{configs[1]}: train.batch_size", "exceeds the 10 images")
    assert str(configs[0]) not in outcome.output and str(configs[2]) not in outcome.output
    assert not (env.tmp / "runs").exists()


def test_a_prior_may_read_the_vqvae_run_an_earlier_config_of_the_command_makes(env, unchanged):
    path = cache(env.tmp / "faces.h5", 64, **env.images())
    vq = env.config(vqvae_values(path, "vq"), "vq")
    prior = env.config(prior_values("runs/vq"), "prior")
    optbench = write_yaml(env.tmp / "opt.yaml", tiny_config(run_dir="runs/vq"))
    watched(env, unchanged)
    checked = invoke("config", "check", "--data", str(vq), str(prior))
    assert checked.exit_code == 0, checked.output
    assert f"{prior}: ok (vqvae_prior" in checked.output
    # Not yet made when the prior would start, or made by a config of another task:
    assert_refused(invoke("config", "check", "--data", str(prior), str(vq)), 2,
                   f"{prior}: data.vqvae_run", "does not exist")
    assert_refused(invoke("train", str(optbench), str(prior)), 2,
                   f"{prior}: data.vqvae_run", f"made by {optbench}", "optbench")
    assert not (env.tmp / "runs").exists()


def test_heads_that_do_not_divide_the_width_are_reported_with_the_other_errors(env):
    nl2sql = nl2sql_values("missing", model={"hidden_size": 30, "heads": 4, "dropout": 2.0})
    nl2sql["train"]["epocs"] = 1
    prior = prior_values("runs/vq")
    prior["model"].update(hidden=30, heads=4, dropout=2.0)
    outcome = invoke("config", "check", str(env.config(nl2sql, "nl")),
                     str(env.config(prior, "prior")))
    assert_refused(outcome, 2, "nl.yaml: data.root", "nl.yaml: train.epocs",
                   "nl.yaml: model.dropout", "nl.yaml: model.heads: must divide",
                   "prior.yaml: model.dropout", "prior.yaml: model.heads: must divide")


# ---- the few cases that train (Keras) ---------------------------------------------------


def test_a_corrupt_codes_cache_is_encoded_again(env, caplog):
    path = cache(env.tmp / "faces.h5", 64, **env.images())
    assert invoke("train", str(env.config(vqvae_values(path, steps_per_epoch=2), "vq"))
                  ).exit_code == 0
    assert invoke("train", str(env.config(prior_values("runs/vq", checkpoint="last",
                                                       steps_per_epoch=2), "prior"))
                  ).exit_code == 0
    codes = env.tmp / "runs" / "prior" / "codes_last.h5"  # the prior's own cache
    codes.write_bytes(b"not hdf5, cut short by a crash")
    outcome = invoke("eval", "runs/prior", "--checkpoint", "last")
    assert outcome.exit_code == 0 and outcome.crashed is None, outcome.output
    assert "codes_last.h5: unreadable" in caplog.text  # eval logs to stderr, not a train.log
    assert json.loads((env.tmp / "runs/prior/summary.json").read_text())["status"] == "finished"
    with h5py.File(codes, "r") as h5:
        assert h5["train"].shape[0] == 96 and h5["val"].shape[0] == 12
    assert not codes.with_name("codes_last.h5.partial").exists()


def test_eval_of_a_run_whose_database_is_gone_names_it(env, unchanged):
    root = env.nl2sql()
    config = env.config(nl2sql_values(root, steps_per_epoch=2))
    assert invoke("train", str(config)).exit_code == 0
    (root / "val" / "val.db").unlink()
    unchanged.append(env.tmp)
    assert_refused(invoke("eval", "runs/nl"), 2, "data.root", str(root / "val" / "val.db"))


def test_questions_longer_than_max_length_are_reported_as_such(env):
    root = env.nl2sql()
    with open(root / "train" / "train.json", "a", encoding="utf-8") as handle:
        handle.write("{\"question\": \"a record without a table\"}\n")
    max_length = max(16, shortest_input(min(columns(root))))  # the narrowest fit, cut short
    outcome = invoke("train", str(env.config(nl2sql_values(root, max_length=max_length,
                                                           steps_per_epoch=1))))
    assert outcome.exit_code == 0, outcome.output
    total = len(columns(root))
    message = (f"train: {total} of {total} questions (100.0%) are longer than "
               f"data.max_length {max_length}")
    log = (env.tmp / "runs" / "nl" / "train.log").read_text()
    for text in (message, "raise data.max_length to", "invalid records left out",
                 "train.json:161: table_id: missing"):
        assert text in outcome.output and text in log, text
    assert "not found in the question" not in outcome.output
