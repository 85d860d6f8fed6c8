"""`task: nl2sql`: the seed's BERT baseline on competition-format data, scored by LF/EX."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
from tqdm import tqdm

from blogml.data.batches import ArrayBatches, Batch
from blogml.data.nl2sql import Invalid, Question, Split, load_split, read_questions
from blogml.data.nl2sql_sql import Table
from blogml.data.nl2sql_values import KINDS as ALIGNMENT_KINDS
from blogml.data.nl2sql_values import alignment_report
from blogml.data.wordpiece import WordPieceTokenizer
from blogml.errors import BlogmlError, ConfigError
from blogml.models.bert import BertConfig, build_bert
from blogml.models.bert_checkpoint import load_bert
from blogml.models.nl2sql import NL2SQLModel
from blogml.runners.base import BaseRunner
from blogml.runners.console import interactive
from blogml.runners.nl2sql.checks import SPLITS, check_loaded
from blogml.runners.nl2sql.decode import DecodeRules, decode
from blogml.runners.nl2sql.features import INPUT_NAMES, Features, batch_from_arrays, encode
from blogml.runners.nl2sql.scoring import score_split
from blogml.tasks.nl2sql import vocab_path

log = logging.getLogger("blogml")
EVAL_BATCH = 64
SHOWN_PROBLEMS = 5  # per kind, in train.log; summary.json counts them all


class NL2SQLRunner(BaseRunner):
    splits = ("val", "train")

    # ---- data ---------------------------------------------------------------------------

    def build_data(self) -> None:
        data, model = self.config["data"], self.config["model"]
        self.data: dict[str, Split] = {split: load_split(data["root"], split)
                                       for split in SPLITS}
        # Questions, databases, vocab, BERT folder and max_length: `blogml train` checked
        # them before the run started, `blogml eval` of an older run did not.
        issues = check_loaded(self.config, self.source, self.data)
        if issues:
            raise ConfigError(issues)
        self.tokenizer = WordPieceTokenizer(vocab_path(model))
        for split in self.data.values():
            self._report_invalid(split)
        train = self.data["train"]
        self.train_features = encode(train.questions, train.tables, self.tokenizer,
                                     data["max_length"], labels=True)
        self.alignment = {name: alignment_report(split) for name, split in self.data.items()}
        self._report_labels(train.name)
        self._train = ArrayBatches(self.train_features.arrays(), self.train_config["batch_size"],
                                   self.config["seed"])
        self.batches_per_pass = self._train.batches_per_pass
        self._eval_features: dict[str, Features] = {}

    def label_counts(self) -> dict[str, int]:
        """Training questions by how much of them trains (every head, every head but some
        values not located or cut off by data.max_length, or none: left out because their
        columns do not fit data.max_length)."""
        features = self.train_features
        return {"fully_labelled": len(features.questions) - len(features.partly_labelled),
                "partly_labelled": len(features.partly_labelled),
                "left_out": len(features.skipped)}

    def _report_labels(self, split: str) -> None:
        report, counts = self.alignment[split], self.label_counts()
        total = sum(counts.values())
        log.info("%s: %d questions; condition values located %s; questions fully labelled "
                 "%d (%.1f%%), partly labelled %d (%.1f%%: the tokens of values not located, or "
                 "past data.max_length, are masked), left out %d", split, total,
                 ", ".join(f"{kind} {100 * report[kind]:.1f}%" for kind in ALIGNMENT_KINDS),
                 counts["fully_labelled"], 100 * counts["fully_labelled"] / max(total, 1),
                 counts["partly_labelled"], 100 * counts["partly_labelled"] / max(total, 1),
                 counts["left_out"])
        for what, problems in (("partly labelled", self.train_features.partly_labelled),
                               ("left out", self.train_features.skipped)):
            for line, why in problems[:SHOWN_PROBLEMS]:
                log.info("  %s %s:%d: %s", what, split, line, why)
        self._report_too_long(split, total)

    def _report_too_long(self, split: str, total: int) -> None:
        """Questions longer than data.max_length, said as such: their values past the cut
        are unlabelled, which the counts above do not tell from values never located."""
        lengths = sorted(length for _, length in self.train_features.too_long)
        if not lengths:
            return
        max_length = self.config["data"]["max_length"]
        log.warning("%s: %d of %d questions (%.1f%%) are longer than data.max_length %d "
                    "(median %d tokens, longest %d): %d left out, %d cut short; raise "
                    "data.max_length to %d to keep them whole", split, len(lengths), total,
                    100 * len(lengths) / max(total, 1), max_length, lengths[len(lengths) // 2],
                    lengths[-1], len(self.train_features.skipped),
                    len(lengths) - len(self.train_features.skipped), lengths[-1])

    def _report_invalid(self, split: Split) -> None:
        if split.invalid:
            log.warning("%s: %d invalid records left out, e.g.", split.name, len(split.invalid))
            for invalid in split.invalid[:SHOWN_PROBLEMS]:
                log.warning("  %s:%d: %s", invalid.path, invalid.line, invalid.reason)

    def data_report(self) -> dict[str, Any]:
        """Value alignment by kind per split, the training questions used, invalid records."""
        return {"alignment": self.alignment,
                "train_questions": self.label_counts(),
                "invalid_records": {name: len(split.invalid)
                                    for name, split in self.data.items()}}

    def train_batches(self, start_step: int) -> Iterator[Batch]:
        return (batch_from_arrays(arrays) for arrays in self._train.batches(start_step))

    def _features(self, questions: list[Question], tables: dict[str, Table]) -> Features:
        return encode(questions, tables, self.tokenizer, self.config["data"]["max_length"],
                      labels=False)

    # ---- model --------------------------------------------------------------------------

    def build_model(self) -> keras.Model:
        model = self.config["model"]
        if model["pretrained"]:
            encoder = load_bert(model["pretrained"], dropout=model["dropout"])
        else:
            encoder = build_bert(BertConfig(
                vocab_size=self.tokenizer.vocab_size, hidden_size=model["hidden_size"],
                num_hidden_layers=model["layers"], num_attention_heads=model["heads"],
                intermediate_size=model["intermediate_size"],
                hidden_dropout_prob=model["dropout"],
                attention_probs_dropout_prob=model["dropout"],
                max_position_embeddings=max(512, self.config["data"]["max_length"])))
        nl2sql = NL2SQLModel(encoder, model["link_units"])
        first = {name: self.train_features.inputs[name][:1] for name in INPUT_NAMES}
        nl2sql(first)  # create the heads' variables before the optimizer is built
        return nl2sql

    def compile_args(self) -> dict[str, Any]:
        return {}  # the loss is the model's own: the four heads' masked cross-entropies

    # ---- predictions and metrics --------------------------------------------------------

    def _predict(self, features: Features, tables: dict[str, Table], what: str
                 ) -> dict[int, dict[str, Any]]:
        """Decoded `sql` of every row of `features`, by the question's line."""
        predictions = {}
        rules = DecodeRules.from_config(self.config["model"]["decode"])
        count = len(features.questions)
        with tqdm(total=count, desc=what, unit="question", disable=not interactive(),
                  leave=False, file=sys.stderr) as bar:
            for start in range(0, count, EVAL_BATCH):
                inputs = {name: array[start:start + EVAL_BATCH]
                          for name, array in features.inputs.items()}
                outputs = {name: keras.ops.convert_to_numpy(value) for name, value in
                           self.distribution.predict_on_batch(self.model, inputs).items()}
                for row, question in enumerate(features.questions[start:start + EVAL_BATCH]):
                    predictions[question.line] = decode(outputs, row, question.question,
                                                        features.token_spans[start + row],
                                                        tables[question.table_id], rules)
                bar.update(len(inputs["token_ids"]))
        return predictions

    def evaluate(self, split: str) -> dict[str, float]:
        """LF and EX accuracy, the competition score and per-component accuracies over
        every valid question of `split` (one that does not fit `max_length` counts wrong)."""
        data = self.data[split]
        if split not in self._eval_features:
            self._eval_features[split] = self._features(data.questions, data.tables)
        features = self._eval_features[split]
        predicted = self._predict(features, data.tables, f"evaluating {split}")
        metrics = score_split(data, predicted)
        return {name: value for name, value in metrics.items() if name.endswith("accuracy")
                or name == "score"}

    def predict(self, input_path: Path, output_path: Path) -> Path:
        """One competition `sql` object per line of `input_path`, in its order. A line that
        cannot be predicted (bad JSON, unknown table) is reported as a warning and gets an
        empty selection, which any scorer counts as wrong; a file with no line to predict is
        refused (BlogmlError) before anything is written. The file appears whole or not at
        all: it is written beside it and renamed."""
        if output_path.is_dir():
            raise BlogmlError(f"--output {output_path}: is a folder, but nl2sql writes one "
                              "JSON-lines file; give a file path")
        questions, tables, invalid = read_questions(input_path, require_sql=False)
        _check_predictable(input_path, questions, invalid)
        for problem in invalid:  # the tables file's problems first: they explain the rest
            log.warning("%s:%d: %s; %s", problem.path, problem.line, problem.reason,
                        "wrote an empty prediction for it" if problem.path == str(input_path)
                        else "its questions get empty predictions")
        features = self._features(questions, tables)
        for line, why in features.skipped:
            log.warning("%s:%d: %s; wrote an empty prediction for it", input_path, line, why)
        predicted = self._predict(features, tables, "predicting")
        empty = {"sel": [], "agg": [], "cond_conn_op": 0, "conds": []}
        lines = sorted([q.line for q in questions]
                       + [p.line for p in invalid if p.path == str(input_path)])
        output_path.parent.mkdir(parents=True, exist_ok=True)
        partial = output_path.with_name(output_path.name + ".partial")
        try:
            with open(partial, "w", encoding="utf-8") as handle:
                for line in lines:
                    handle.write(json.dumps(predicted.get(line, empty), ensure_ascii=False)
                                 + "\n")
            partial.replace(output_path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return output_path


def _check_predictable(path: Path, questions: list[Question], invalid: list[Invalid]) -> None:
    """BlogmlError naming `path` when it holds no question to predict: an empty output
    (or one of empty selections only) would look like a prediction file and score 0."""
    if questions:
        return
    if not any(problem.path == str(path) for problem in invalid):
        raise BlogmlError(f"{path}: holds no questions; it needs one JSON object "
                          "{\"table_id\": ..., \"question\": ...} per line")
    raise BlogmlError(f"{path}: no line can be predicted:\n"
                      + "\n".join(f"{p.path}:{p.line}: {p.reason}" for p in invalid))
