"""Config schema of `task: nl2sql`."""

from __future__ import annotations

import os
from typing import Any

from blogml.config.common import task_schema
from blogml.config.schema import Bool, ExistingPath, Float, Int, Issues, Section, join, needs
from blogml.data.wordpiece import CHINESE_VOCAB

DATA = Section({
    "root": ExistingPath(doc="competition/TableQA folder: {train,val,test}/<split>.json, "
                             ".tables.json and .db",
                         hint="`blogml data synth nl2sql --out DIR` writes demo data in that "
                              "layout"),
    "max_length": Int(160, "tokens of `[CLS] question [SEP]` + `[CLS] header [SEP]` per column; "
                           "longer inputs shorten the headers, then the question", min=16,
                      max=512),
}, "NL2SQL competition data")

MODEL = Section({
    "pretrained": ExistingPath(None, "BERT to fine-tune: a Google TF checkpoint folder "
                                     "(bert_config.json, bert_model.ckpt.*) or a Hugging Face "
                                     "one (config.json and model.safetensors or "
                                     "pytorch_model.bin, either maybe sharded); null: a "
                                     "randomly initialised BERT of the size below",
                               nullable=True,
                               hint="put a Chinese BERT there (e.g. Google's "
                                    "chinese_L-12_H-768_A-12 or Hugging Face's "
                                    "bert-base-chinese) or give its folder; nothing is "
                                    "downloaded"),
    "vocab": ExistingPath(None, "WordPiece vocab.txt; null: <pretrained>/vocab.txt, or "
                                "without `pretrained` the Chinese BERT vocab shipped with "
                                "blogml", nullable=True),
    "hidden_size": Int(768, "width of the random BERT (ignored with `pretrained`)", min=8),
    "layers": Int(12, "transformer blocks of the random BERT", min=1),
    "heads": Int(12, "attention heads of the random BERT (must divide hidden_size)", min=1),
    "intermediate_size": Int(3072, "feed-forward width of the random BERT", min=1),
    "dropout": Float(0.1, "BERT's hidden and attention dropout", min=0.0, max=0.9),
    "link_units": Int(256, "width of the value-token x column scorer (the seed's 256)", min=1),
    "decode": Section({
        "snap_to_cells": Bool(True, "an `==` value of a text column that is not one of its "
                                    "cells becomes the table's most similar cell, and the "
                                    "condition moves to the column that holds it"),
        "compare_numbers_only": Bool(True, "`>` and `<` only on numbers: another value takes "
                                           "the likelier of `==` and `!=`"),
        "consistent_connector": Bool(True, "no connector for one condition, and `and` or `or` "
                                           "(the likelier) for several"),
    }, "how the heads' outputs become SQL (the seed's rules; each can be switched off)"),
}, "the seed's BERT baseline: BERT encoder and four heads")

METRICS = ["lf_accuracy", "ex_accuracy", "score", "sel_accuracy", "agg_accuracy",
           "conn_accuracy", "cond_cols_accuracy", "cond_ops_accuracy", "cond_values_accuracy"]


@needs("model.pretrained", "model.hidden_size", "model.heads")
def _check_heads(config: dict[str, Any], path: str, issues: Issues) -> None:
    model = config["model"]
    if model["pretrained"] is None and model["hidden_size"] % model["heads"]:
        issues.add(join(path, "model.heads"), f"must divide model.hidden_size "
                                              f"({model['hidden_size']}), got {model['heads']}")


@needs("model.pretrained", "model.vocab")
def _check_vocab(config: dict[str, Any], path: str, issues: Issues) -> None:
    model = config["model"]
    if model["pretrained"] is not None and model["vocab"] is None and not os.path.isfile(
            os.path.join(model["pretrained"], "vocab.txt")):
        issues.add(join(path, "model.vocab"), f"null, and {model['pretrained']} has no "
                                              "vocab.txt; give its path")


def vocab_path(model: dict[str, Any]) -> str:
    """The vocab.txt a run tokenises with: `model.vocab`, else the pretrained folder's, else
    the Chinese BERT vocabulary shipped with blogml."""
    if model["vocab"]:
        return model["vocab"]
    return os.path.join(model["pretrained"], "vocab.txt") if model["pretrained"] else str(
        CHINESE_VOCAB)


SCHEMA = task_schema(
    "nl2sql", data=DATA, model=MODEL, metrics=METRICS, monitor="val_lf_accuracy",
    monitor_mode="max", validators=[_check_heads, _check_vocab])
