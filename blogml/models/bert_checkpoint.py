"""Loading a pre-trained BERT into `bert.build_bert`'s layers, kept apart from them as
keras-hub keeps its converters: the config file, the weights' names and the pooler that
fine-tuned checkpoints may lack. The file formats are read by `bert_tf_checkpoint` (Google
TF1, imports TensorFlow only then) and `bert_hf_checkpoint` (safetensors, torch pickles).

`weight_names` lists, for every model variable, the Google name it is loaded from; Hugging
Face names are derived from those (`bert_hf_checkpoint.hf_name`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import keras
import numpy as np

from blogml.errors import BlogmlError
from blogml.models.bert import BertConfig, build_bert
from blogml.models.bert_hf_checkpoint import (
    HF_CONFIG,
    WEIGHT_FILES,
    find_hf_weights,
    hf_names,
    read_hf_checkpoint,
)
from blogml.models.bert_tf_checkpoint import TF_CONFIG, TF_INDEX, TF_PREFIX

log = logging.getLogger("blogml")

POOLER = ("bert/pooler/dense/kernel", "bert/pooler/dense/bias")


def weight_names(model: keras.Model) -> list[tuple[str, keras.Variable]]:
    """(Google checkpoint name, variable) for every weight of a `build_bert` model.

    Kernels are [in, out] in Keras and in Google's checkpoints alike; embedding tables are
    [rows, hidden]; LayerNorm scales and offsets are Google's gamma and beta.
    """
    embeddings = model.get_layer("embeddings")
    pairs = [(f"bert/embeddings/{table.name}", table.embeddings) for table in
             (embeddings.word_embeddings, embeddings.token_type_embeddings,
              embeddings.position_embeddings)]
    pairs += [("bert/embeddings/LayerNorm/gamma", embeddings.layer_norm.gamma),
              ("bert/embeddings/LayerNorm/beta", embeddings.layer_norm.beta)]
    index = 0
    while any(layer.name == f"layer_{index}" for layer in model.layers):
        block = model.get_layer(f"layer_{index}")
        prefix = f"bert/encoder/layer_{index}"
        for dense in (block.query, block.key, block.value, block.attention_output_dense,
                      block.intermediate_dense, block.output_dense):
            path = _google_path(dense.name)
            pairs += [(f"{prefix}/{path}/kernel", dense.kernel),
                      (f"{prefix}/{path}/bias", dense.bias)]
        for norm in (block.attention_output_layer_norm, block.output_layer_norm):
            path = _google_path(norm.name)
            pairs += [(f"{prefix}/{path}/gamma", norm.gamma),
                      (f"{prefix}/{path}/beta", norm.beta)]
        index += 1
    pooler = model.get_layer("pooler_dense")
    return pairs + [("bert/pooler/dense/kernel", pooler.kernel),
                    ("bert/pooler/dense/bias", pooler.bias)]


def _google_path(layer_name: str) -> str:
    """`attention_self_query` → `attention/self/query`, `output_LayerNorm` → `output/LayerNorm`."""
    return layer_name.replace("_", "/")


# ---------------------------------------------------------------------------------------------
# Loading


def checkpoint_kind(path: str | Path) -> str:
    """"tensorflow" for a Google BERT directory, "huggingface" for a Hugging Face one."""
    folder = Path(path)
    if not folder.is_dir():
        raise BlogmlError(f"{folder}: not a directory (expected a BERT checkpoint directory)")
    if find_hf_weights(folder) is not None:
        return "huggingface"
    if (folder / TF_INDEX).is_file():
        return "tensorflow"
    raise BlogmlError(f"{folder}: not a BERT checkpoint directory: looked for {TF_INDEX} (+ "
                      f"{TF_CONFIG}, Google TensorFlow) and {', '.join(WEIGHT_FILES)} (+ "
                      f"{HF_CONFIG}, Hugging Face)")


def _config_file(folder: Path, kind: str) -> Path:
    names = (TF_CONFIG, HF_CONFIG) if kind == "tensorflow" else (HF_CONFIG, TF_CONFIG)
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise BlogmlError(f"{folder}: no {names[0]} next to the {kind} weights")


def load_bert(path: str | Path, *, dropout: float | None = None) -> keras.Model:
    """The BERT of a Google TF or Hugging Face checkpoint directory, weights loaded.

    `dropout` replaces both dropout probabilities of the config (fine-tuning recipes
    choose their own). Every variable must be found with its exact shape, except the
    pooler's when the checkpoint has none at all (`_without_absent_pooler`); tensors the
    model has no use for (MLM/NSP heads, optimizer slots) are ignored.
    """
    folder = Path(path)
    kind = checkpoint_kind(folder)
    config = BertConfig.from_json(_config_file(folder, kind))
    if dropout is not None:
        config = dataclasses.replace(config, hidden_dropout_prob=dropout,
                                     attention_probs_dropout_prob=dropout)
    source, shapes, read = _open_checkpoint(folder, kind)
    model = build_bert(config)
    pairs = weight_names(model)
    google = [name for name, _ in pairs]
    names = dict(zip(google, google)) if kind == "tensorflow" else hf_names(google, shapes)
    pairs = _without_absent_pooler(pairs, names, shapes, source)
    _assign(pairs, names, shapes, read, kind == "huggingface", source, config)
    return model


def _open_checkpoint(folder: Path, kind: str
                     ) -> tuple[Path, dict[str, tuple], Callable[[str], np.ndarray]]:
    """(weights file, shape of every tensor by name, reader of one tensor). Called before the
    model is built, so that an unreadable file fails at once, not after building a BERT."""
    if kind == "tensorflow":
        from blogml.models.bert_tf_checkpoint import read_tf_checkpoint  # TensorFlow

        source = folder / TF_PREFIX
        return source, *read_tf_checkpoint(source)
    source = find_hf_weights(folder)
    return source, *read_hf_checkpoint(source)


def _without_absent_pooler(pairs: list[tuple[str, keras.Variable]], names: Mapping[str, str],
                           shapes: Mapping[str, tuple], source: Path
                           ) -> list[tuple[str, keras.Variable]]:
    """`pairs` less the pooler's when the checkpoint has no pooler tensor at all, as MLM-only
    checkpoints (transformers' `BertForMaskedLM`) have none: the pooler then keeps the
    initialisation it was built with. A pooler with only one of its tensors is still an
    error, like any other missing tensor."""
    if any(names[google] in shapes for google in POOLER):
        return pairs
    log.warning("%s: no pooler weights (a BertForMaskedLM checkpoint?): the pooler is "
                "initialised as built, at random; NL2SQL does not read the pooler", source)
    return [(google, variable) for google, variable in pairs if google not in POOLER]


def _assign(pairs: list[tuple[str, keras.Variable]], names: Mapping[str, str],
            shapes: Mapping[str, tuple], read: Callable[[str], np.ndarray], transpose: bool,
            source: Path, config: BertConfig) -> None:
    """Checks every tensor first and reports all problems at once, then assigns."""
    problems, plan = [], []
    for google, variable in pairs:
        name = names[google]
        # HF (torch Linear) stores [out, in]; Keras and Google store [in, out].
        is_kernel = transpose and google.endswith("/kernel")
        expected = tuple(variable.shape)[::-1] if is_kernel else tuple(variable.shape)
        if name not in shapes:
            problems.append(f"missing tensor {name} (expected shape {list(expected)})")
        elif tuple(shapes[name]) != expected:
            problems.append(f"tensor {name} has shape {list(shapes[name])}, expected "
                            f"{list(expected)}")
        else:
            plan.append((name, variable, is_kernel))
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"]
                                 if len(problems) > 10 else [])
        raise BlogmlError(f"{source}: the checkpoint does not fit its config ("
                          f"hidden_size={config.hidden_size}, num_hidden_layers="
                          f"{config.num_hidden_layers}, vocab_size={config.vocab_size}):\n  "
                          + "\n  ".join(shown))
    for name, variable, is_kernel in plan:
        value = read(name)
        variable.assign(np.asarray(value.T if is_kernel else value, dtype=variable.dtype))
