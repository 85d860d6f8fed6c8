"""The optbench problems on the seed's real models: a tiny VQ-VAE and a tiny NL2SQL model.

Their data are the demo data of the real tasks, generated from the run's seed into a
temporary folder inside `splits()` and read back through the real tasks' own code, then
held in memory like every other problem's arrays (the folder is deleted again):

- `vqvae_tiny`: `synth_celeba` faces, `prepare_celeba` writes the HDF5 cache (64 px: the
  smallest size it makes), `HDF5Images` (the vqvae task's reader) reads every split back
  in [-1, 1]; smaller `image_size`s are the mean of each f x f block of pixels.
- `nl2sql_tiny`: `synth_nl2sql` writes the competition layout, `load_split` reads it,
  `features.encode` (the nl2sql task's feature and label pipeline) makes the arrays,
  tokenised with the Chinese BERT vocabulary shipped with blogml. The synthetic test split
  has no SQL (as in the competition), so the val file holds num_val + num_test questions:
  the first num_val are `val`, the rest `test` (both on tables the training set never saw).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from blogml.data.celeba import SPLITS as CELEBA_SPLITS
from blogml.data.celeba import prepare_celeba, synth_celeba
from blogml.data.hdf5 import HDF5Images, to_unit_range
from blogml.data.nl2sql import load_split
from blogml.data.nl2sql_sql import NOT_A_VALUE
from blogml.data.nl2sql_synth import synth_nl2sql
from blogml.data.wordpiece import CHINESE_VOCAB, WordPieceTokenizer
from blogml.models.bert import BertConfig, build_bert
from blogml.models.nl2sql import NL2SQLModel
from blogml.models.vqvae import VQVAE
from blogml.runners.nl2sql.features import INPUT_NAMES, LABEL_NAMES, Features, encode
from blogml.runners.optbench.builders import ProblemBuilder, Section, Splits, split_sizes

# ---- vqvae_tiny -------------------------------------------------------------------------

CACHE_SIZE = 64  # the smallest cache `prepare_celeba` writes
# Drawn at CelebA's aspect ratio (178 x 218) just large enough for a 64 px centre square, so
# the cache is the drawing's own pixels (crop 64, no resampling) and drawing stays fast.
FACE_SIZE = (64, 78)


def write_face_cache(folder: Path, sizes: Mapping[str, int], seed: int) -> Path:
    """`sizes[split]` synthetic faces drawn from `seed` (`blogml data synth celeba`), in
    that order, converted to `folder/faces64.h5` by `blogml data prepare celeba` with a
    partition file (`--split-file`) that gives each split exactly its size."""
    source = folder / "faces"
    synth_celeba(source, count=sum(sizes.values()), seed=seed, size=FACE_SIZE)
    codes = np.repeat(np.arange(len(CELEBA_SPLITS)), [sizes[s] for s in CELEBA_SPLITS])
    partition = folder / "partition.txt"
    partition.write_text("".join(f"{i + 1:06d}.jpg {code}\n" for i, code in enumerate(codes)),
                         encoding="ascii")
    return prepare_celeba(source, folder / "faces64.h5", size=CACHE_SIZE, crop=FACE_SIZE[0],
                          split_file=partition, seed=seed).path


def read_face_cache(path: Path, split: str, seed: int = 0) -> np.ndarray:
    """Every image of `split` in file order, float32 in [-1, 1], as the vqvae task's reader
    (`HDF5Images`, `to_unit_range`) yields them for evaluation."""
    images = HDF5Images(path, split, batch_size=1, seed=seed, transform=to_unit_range)
    try:
        return np.concatenate(list(images.eval_batches(split, 256)))
    finally:
        images.close()


def downsample(images: np.ndarray, size: int) -> np.ndarray:
    """The mean of each f x f pixel block, f = side / size (box filter; exact for f = 1)."""
    factor = images.shape[1] // size
    if factor == 1:
        return images
    n, side, _, channels = images.shape
    blocks = images.reshape(n, side // factor, factor, side // factor, factor, channels)
    return blocks.mean(axis=(2, 4), dtype=np.float32)


def face_splits(sizes: Mapping[str, int], image_size: int, seed: int) -> Splits:
    """{split: (images,)} of synthetic faces through the real HDF5 path, from `seed`."""
    with tempfile.TemporaryDirectory(prefix="blogml-vqvae_tiny-") as folder:
        path = write_face_cache(Path(folder), sizes, seed)
        return {split: (downsample(read_face_cache(path, split), image_size),)
                for split in sizes}


class VQVAETinyProblem(ProblemBuilder):
    def splits(self, data: Section, seed: int) -> Splits:
        return face_splits(split_sizes(data), data["image_size"], seed)

    def build_model(self, data: Section, model: Section, seed: int) -> keras.Model:
        return VQVAE(image_size=data["image_size"], z_dim=model["z_dim"],
                     num_codes=model["num_codes"], beta=model["beta"],
                     residual_blocks=model["residual_blocks"],
                     codebook_update=model["codebook_update"], decay=model["decay"], seed=seed)

    def compile_args(self, data: Section, model: Section) -> dict[str, Any]:
        return {}  # the model's own compute_loss and metrics (loss, mse, psnr, commitment, ...)


# ---- nl2sql_tiny ------------------------------------------------------------------------


class Columns:
    """Named arrays of equal length that `ArrayBatches` and `eval_batches` index as one
    array: `len` is the rows, a row selection is a dict of those rows of every array (the
    dict a Keras model with named inputs, labels or sample weights takes)."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) != 1:
            raise ValueError(f"arrays differ in length: {sorted(lengths)}")
        self.arrays = dict(arrays)
        self.rows = lengths.pop()

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, key: slice | np.ndarray) -> dict[str, np.ndarray]:
        return {name: array[key] for name, array in self.arrays.items()}

    def __iter__(self) -> Iterator[str]:  # no row iteration: an accidental loop fails loudly
        raise TypeError("iterate over Columns.arrays")


def head_weights(features: Features) -> dict[str, np.ndarray]:
    """Per head, the positions its masked loss averages over, as sample weights for the
    heads' accuracies: every question (conn), the real columns (agg), the tokens whose
    operator label is known (op), the value tokens (link)."""
    inputs, labels = features.inputs, features.labels
    value_tokens = inputs["question_mask"] * (labels["op"] != NOT_A_VALUE)
    return {"conn": np.ones(len(labels["conn"]), np.float32),
            "agg": inputs["header_mask"].astype(np.float32),
            "op": labels["op_mask"].astype(np.float32),
            "link": value_tokens.astype(np.float32)}


@functools.lru_cache(maxsize=4)
def tokenizer_of(vocab: str | Path) -> WordPieceTokenizer:
    """One tokenizer per vocabulary and process (building one takes most of a second)."""
    return WordPieceTokenizer(vocab)


def question_splits(sizes: Mapping[str, int], max_length: int, seed: int,
                    vocab: str | Path = CHINESE_VOCAB) -> tuple[Splits, dict[str, Features]]:
    """{split: (inputs, labels, weights)} (each a `Columns`) of synthetic NL2SQL questions
    from `seed`, through the competition-format reader and the nl2sql task's encoder; and
    the `Features` of each split. Questions that do not fit `max_length` are left out (none
    at the default 96: the longest synthetic input is 96 tokens)."""
    tokenizer = tokenizer_of(vocab)
    with tempfile.TemporaryDirectory(prefix="blogml-nl2sql_tiny-") as folder:
        synth_nl2sql(folder, seed=seed, counts={"train": sizes["train"],
                                                "val": sizes["val"] + sizes["test"], "test": 1})
        loaded = {split: load_split(folder, split) for split in ("train", "val")}
    num_columns = max(len(t.header) for s in loaded.values() for t in s.tables.values())
    val = loaded["val"].questions
    chosen = {"train": (loaded["train"].questions, loaded["train"].tables),
              "val": (val[:sizes["val"]], loaded["val"].tables),
              "test": (val[sizes["val"]:], loaded["val"].tables)}
    features = {split: encode(questions, tables, tokenizer, max_length, labels=True,
                              num_columns=num_columns)
                for split, (questions, tables) in chosen.items()}
    splits = {split: (Columns({n: f.inputs[n] for n in INPUT_NAMES}),
                      Columns({n: f.labels[n] for n in LABEL_NAMES}),
                      Columns(head_weights(f)))
              for split, f in features.items()}
    return splits, features


def link_hits(slots, logits):
    """1 where a token's highest-scoring column is one of its value's columns (`slots`,
    -1 for unused), else 0."""
    best = keras.ops.expand_dims(keras.ops.argmax(logits, axis=-1), -1)
    hit = keras.ops.equal(keras.ops.cast(slots, best.dtype), best)
    return keras.ops.cast(keras.ops.any(hit, axis=-1), "float32")


class NL2SQLTinyProblem(ProblemBuilder):
    def splits(self, data: Section, seed: int) -> Splits:
        splits, _ = question_splits(split_sizes(data), data["max_length"], seed)
        return splits

    def build_model(self, data: Section, model: Section, seed: int) -> keras.Model:
        encoder = build_bert(BertConfig(
            vocab_size=tokenizer_of(CHINESE_VOCAB).vocab_size,
            hidden_size=model["heads"] * model["head_size"], num_hidden_layers=model["layers"],
            num_attention_heads=model["heads"], intermediate_size=model["intermediate_size"],
            hidden_dropout_prob=model["dropout"], attention_probs_dropout_prob=model["dropout"],
            max_position_embeddings=data["max_length"]))
        nl2sql = NL2SQLModel(encoder, model["link_units"])
        length = data["max_length"]
        # Create the heads' variables before the optimizer is built (their shapes do not
        # depend on the number of columns).
        nl2sql({name: np.zeros((1, 1 if name.startswith("header") else length), np.int32)
                for name in INPUT_NAMES})
        return nl2sql

    def compile_args(self, data: Section, model: Section) -> dict[str, Any]:
        """The loss is the model's own (the four heads' masked cross-entropies, also logged
        per head as <head>_loss); each head's accuracy over the positions its loss covers,
        weighted by `head_weights` (Keras names them <head>_accuracy)."""
        def accuracy():
            return keras.metrics.SparseCategoricalAccuracy(name="accuracy")

        return {"weighted_metrics": {
            "conn": [accuracy()], "agg": [accuracy()], "op": [accuracy()],
            "link": [keras.metrics.MeanMetricWrapper(link_hits, name="accuracy")]}}
