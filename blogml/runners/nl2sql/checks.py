"""What a `task: nl2sql` run needs of its data and BERT files, checked before any compute.

The questions are read and validated as training reads them (`load_split`), the val
database must answer every gold query (`check_split`: execution accuracy would otherwise
count predictions wrong, silently), and the vocabulary and pretrained folder must be
usable. Nothing is tokenised and no weights are read: a study checks every config in
seconds. Keras-free.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from blogml.config.loader import LoadedConfig
from blogml.data.nl2sql import Split, load_split, split_paths
from blogml.data.wordpiece import WordPieceTokenizer
from blogml.errors import BlogmlError, ConfigIssue
from blogml.models.bert_hf_checkpoint import HF_CONFIG, WEIGHT_FILES, find_hf_weights
from blogml.models.bert_tf_checkpoint import TF_CONFIG, TF_INDEX
from blogml.runners.nl2sql.features import shortest_input
from blogml.runners.nl2sql.scoring import check_split
from blogml.tasks.nl2sql import vocab_path

SPLITS = ("train", "val")  # what a run reads: it trains on one and validates on the other


def check_data(values: dict[str, Any], source: str,
               planned: Mapping[Path, LoadedConfig] | None = None) -> list[ConfigIssue]:
    """Every problem of `data.root`, `model.vocab` and `model.pretrained` that would stop
    training or make its validation meaningless. `planned` is not needed here."""
    splits: dict[str, Split] = {}
    issues = []
    for name in SPLITS:
        try:
            splits[name] = load_split(values["data"]["root"], name)
        except BlogmlError as error:
            issues.append(ConfigIssue(source, "data.root", str(error)))
    return issues + check_loaded(values, source, splits)


def check_loaded(values: dict[str, Any], source: str,
                 splits: Mapping[str, Split]) -> list[ConfigIssue]:
    """`check_data` on splits already read: the runner reads them to train, and checks
    them as read rather than reading them twice."""
    data, model = values["data"], values["model"]
    issues = []
    usable = {name: split for name, split in splits.items() if split.questions}
    for name, split in splits.items():
        if name not in usable:
            issues.append(ConfigIssue(source, "data.root", _no_question(data["root"], split)))
    if "val" in usable:
        try:
            check_split(data["root"], usable["val"])
        except BlogmlError as error:
            issues.append(ConfigIssue(source, "data.root", str(error)))
    if "train" in usable:
        issues += _fit_issues(values, usable["train"], source)
    issues += _vocab_issues(model, source)
    if model["pretrained"]:
        problem = _pretrained_problem(Path(model["pretrained"]))
        if problem:
            issues.append(ConfigIssue(source, "model.pretrained", problem))
    return issues


def _no_question(root: str, split: Split) -> str:
    path = split_paths(root, split.name)[0]
    why = (f"all {len(split.invalid)} records are invalid, e.g. {split.invalid[0]}"
           if split.invalid else "it holds no question")
    return (f"{path}: no usable {split.name} question ({why}); see `blogml data check nl2sql "
            f"{root}`")


def _fit_issues(values: dict[str, Any], train: Split, source: str) -> list[ConfigIssue]:
    """Training needs a batch of questions that fit `data.max_length` (a question of a table
    with more columns than it has room for is left out, see `features.shortest_input`)."""
    max_length, batch_size = values["data"]["max_length"], values["train"]["batch_size"]
    columns = [len(train.table_of(question).header) for question in train.questions]
    fitting = sum(max_length >= shortest_input(count) for count in columns)
    path = split_paths(values["data"]["root"], "train")[0]
    if not fitting:
        needed = shortest_input(min(columns))
        return [ConfigIssue(source, "data.max_length",
                            f"{max_length} fits no training question of {path}: the smallest "
                            f"of their tables has {min(columns)} columns, which take "
                            f"{needed} tokens at the least; raise data.max_length to {needed} "
                            "or more (more keeps the questions whole)")]
    if fitting < batch_size:
        return [ConfigIssue(source, "train.batch_size",
                            f"{batch_size} exceeds the {fitting} training questions of {path} "
                            f"that fit data.max_length {max_length}; lower train.batch_size "
                            "(or raise data.max_length)")]
    return []


def _vocab_issues(model: dict[str, Any], source: str) -> list[ConfigIssue]:
    path = vocab_path(model)
    try:
        WordPieceTokenizer(path)
    except BlogmlError as error:
        message = str(error)
    else:
        return []
    key = "model.vocab" if model["vocab"] or not model["pretrained"] else "model.pretrained"
    return [ConfigIssue(source, key, message)]


def _pretrained_problem(folder: Path) -> str | None:
    """Why `folder` is not a BERT checkpoint `load_bert` can read, or None: its weights
    file and config json must be there, and the config must be a JSON object with a
    vocab_size (the weights themselves are read when the model is built)."""
    if not folder.is_dir():
        return f"{folder}: not a folder (expected a BERT checkpoint folder)"
    if find_hf_weights(folder) is not None:
        names = (HF_CONFIG, TF_CONFIG)
    elif (folder / TF_INDEX).is_file():
        if not any(folder.glob("bert_model.ckpt.data-*")):
            return f"{folder}: has {TF_INDEX} but no bert_model.ckpt.data-* weights next to it"
        names = (TF_CONFIG, HF_CONFIG)
    else:
        return (f"{folder}: no BERT weights: looked for {TF_INDEX} (Google TensorFlow) and "
                f"{', '.join(WEIGHT_FILES)} (Hugging Face); put the checkpoint's files there")
    config = next((folder / name for name in names if (folder / name).is_file()), None)
    if config is None:
        return f"{folder}: no {names[0]} next to the weights"
    try:
        parsed = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"{config}: not a readable BERT config ({error})"
    if not isinstance(parsed, dict) or "vocab_size" not in parsed:
        return f"{config}: not a BERT config (expected a JSON object with vocab_size)"
    return None
