"""BERT (Devlin et al. 2018) in Keras 3: the layers (loading checkpoints: `bert_checkpoint`).

The NL2SQL baseline (README: task: nl2sql) fine-tunes a pre-trained Chinese BERT, so the model must
reproduce the original numerics exactly: embeddings (word + position + token type) summed,
LayerNorm, dropout; post-LN transformer blocks with exact (erf) GELU; a dense+tanh pooler on
the first token. Everything is `keras`/`keras.ops`, so it runs on every backend.

Inputs and outputs follow keras-hub's BertBackbone: a dict of int32 `[batch, seq]` arrays
`{"token_ids", "segment_ids", "padding_mask"}` in, `{"sequence_output", "pooled_output"}` out.
Layers are named after the checkpoints' variables (`embeddings/word_embeddings`,
`layer_3/attention_self_query`, `layer_3/output_LayerNorm`, `pooler_dense`, ...), so that
`bert_checkpoint` maps every variable to its Google and Hugging Face names.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import ops

from blogml.errors import BlogmlError

# Activations BERT configs name: Google's and HF's "gelu" is the exact, erf-based one.
ACTIVATIONS: dict[str, Callable] = {
    "gelu": lambda x: ops.gelu(x, approximate=False),
    "gelu_new": lambda x: ops.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: ops.gelu(x, approximate=True),
    "relu": ops.relu,
}
MASK_PENALTY = -10000.0  # added to the scores of padded keys, as in Google's BERT


@dataclass(frozen=True)
class BertConfig:
    """The hyper-parameters of `bert_config.json` (Google) or `config.json` (HF)."""

    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        if self.hidden_act not in ACTIVATIONS:
            raise BlogmlError(f"hidden_act: unsupported activation {self.hidden_act!r} "
                              f"(supported: {', '.join(ACTIVATIONS)})")
        if self.hidden_size % self.num_attention_heads:
            raise BlogmlError(f"hidden_size {self.hidden_size} is not a multiple of "
                              f"num_attention_heads {self.num_attention_heads}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise BlogmlError(f"{name}: must be in [0, 1), got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, values: dict) -> BertConfig:
        """Keeps the fields BERT needs; other keys (`directionality`, `pooler_*`, HF's
        `architectures`, ...) are ignored, since checkpoints carry many of them."""
        if values.get("position_embedding_type", "absolute") != "absolute":
            raise BlogmlError("position_embedding_type: only 'absolute' is supported, got "
                              f"{values['position_embedding_type']!r}")
        if "vocab_size" not in values:
            raise BlogmlError("vocab_size: missing from the BERT config")
        known = {field.name: field.type for field in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in known:
                continue
            kind = {"int": int, "float": float, "str": str}[known[key]]
            try:
                kwargs[key] = kind(value)
            except (TypeError, ValueError):
                raise BlogmlError(f"{key}: expected {known[key]}, got {value!r}") from None
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | Path) -> BertConfig:
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise BlogmlError(f"{path}: cannot read the BERT config ({error.strerror})") from None
        except ValueError as error:
            raise BlogmlError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(values, dict):
            raise BlogmlError(f"{path}: expected a JSON object")
        try:
            return cls.from_dict(values)
        except BlogmlError as error:
            raise BlogmlError(f"{path}: {error}") from None


def _initializer() -> keras.initializers.Initializer:
    """BERT's truncated normal (initializer_range 0.02). A new one per weight: an unseeded
    Keras initializer fixes its seed when created, so a shared one repeats its draws."""
    return keras.initializers.TruncatedNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="blogml")
class BertEmbeddings(keras.layers.Layer):
    """Word + position + token-type embeddings, LayerNorm, dropout."""

    def __init__(self, config: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config
        c = BertConfig.from_dict(config)
        self.word_embeddings = keras.layers.Embedding(
            c.vocab_size, c.hidden_size, embeddings_initializer=_initializer(),
            name="word_embeddings")
        self.position_embeddings = keras.layers.Embedding(
            c.max_position_embeddings, c.hidden_size, embeddings_initializer=_initializer(),
            name="position_embeddings")
        self.token_type_embeddings = keras.layers.Embedding(
            c.type_vocab_size, c.hidden_size, embeddings_initializer=_initializer(),
            name="token_type_embeddings")
        self.layer_norm = keras.layers.LayerNormalization(epsilon=c.layer_norm_eps,
                                                         name="LayerNorm")
        self.dropout = keras.layers.Dropout(c.hidden_dropout_prob, name="dropout")

    def build(self, input_shape) -> None:
        hidden = self.config["hidden_size"]
        for table in (self.word_embeddings, self.position_embeddings,
                      self.token_type_embeddings):
            table.build((None,))
        self.layer_norm.build((None, None, hidden))

    def call(self, token_ids, segment_ids, training=None):
        length, limit = ops.shape(token_ids)[1], self.config["max_position_embeddings"]
        if isinstance(length, int) and length > limit:  # when traced, the slice fails instead
            raise BlogmlError(f"sequences of {length} tokens are longer than BERT's "
                              f"max_position_embeddings ({limit}): truncate them")
        # The first `length` rows of the table: a slice, not a gather, so no index copies.
        table = ops.convert_to_tensor(self.position_embeddings.embeddings)
        positions = ops.slice(table, (0, 0), (length, self.config["hidden_size"]))
        x = (self.word_embeddings(token_ids) + self.token_type_embeddings(segment_ids)
             + ops.cast(positions, self.compute_dtype)[None])
        return self.dropout(self.layer_norm(x), training=training)

    def compute_output_shape(self, token_ids_shape, segment_ids_shape):
        return (*token_ids_shape, self.config["hidden_size"])

    def get_config(self) -> dict:
        return {**super().get_config(), "config": self.config}


@keras.saving.register_keras_serializable(package="blogml")
class BertLayer(keras.layers.Layer):
    """One post-LN encoder block: self-attention, residual, LayerNorm; feed-forward,
    residual, LayerNorm. Sublayer names spell the Google variable path with `_` for `/`."""

    def __init__(self, config: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config
        c = BertConfig.from_dict(config)
        self.heads, self.head_size = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        self.activation = ACTIVATIONS[c.hidden_act]

        def dense(units: int, name: str) -> keras.layers.Dense:
            return keras.layers.Dense(units, kernel_initializer=_initializer(), name=name)

        def norm(name: str) -> keras.layers.LayerNormalization:
            return keras.layers.LayerNormalization(epsilon=c.layer_norm_eps, name=name)

        self.query = dense(c.hidden_size, "attention_self_query")
        self.key = dense(c.hidden_size, "attention_self_key")
        self.value = dense(c.hidden_size, "attention_self_value")
        self.attention_output_dense = dense(c.hidden_size, "attention_output_dense")
        self.attention_output_layer_norm = norm("attention_output_LayerNorm")
        self.intermediate_dense = dense(c.intermediate_size, "intermediate_dense")
        self.output_dense = dense(c.hidden_size, "output_dense")
        self.output_layer_norm = norm("output_LayerNorm")
        self.attention_dropout = keras.layers.Dropout(c.attention_probs_dropout_prob,
                                                      name="attention_dropout")
        self.attention_output_dropout = keras.layers.Dropout(c.hidden_dropout_prob,
                                                             name="attention_output_dropout")
        self.output_dropout = keras.layers.Dropout(c.hidden_dropout_prob, name="output_dropout")

    def build(self, input_shape) -> None:
        hidden, inner = self.config["hidden_size"], self.config["intermediate_size"]
        for layer in (self.query, self.key, self.value, self.attention_output_dense,
                      self.intermediate_dense):
            layer.build((None, None, hidden))
        self.output_dense.build((None, None, inner))
        self.attention_output_layer_norm.build((None, None, hidden))
        self.output_layer_norm.build((None, None, hidden))

    def _split_heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        return ops.reshape(x, (batch, length, self.heads, self.head_size))

    def call(self, x, attention_bias, training=None):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        q = self._split_heads(self.query(x) * (1.0 / self.head_size ** 0.5))
        k, v = self._split_heads(self.key(x)), self._split_heads(self.value(x))
        scores = ops.einsum("bqnd,bknd->bnqk", q, k) + ops.cast(attention_bias, x.dtype)
        probs = self.attention_dropout(ops.softmax(scores, axis=-1), training=training)
        context = ops.reshape(ops.einsum("bnqk,bknd->bqnd", probs, v),
                              (batch, length, self.heads * self.head_size))
        h = self.attention_output_dropout(self.attention_output_dense(context),
                                          training=training)
        x = self.attention_output_layer_norm(x + h)
        h = self.output_dense(self.activation(self.intermediate_dense(x)))
        return self.output_layer_norm(x + self.output_dropout(h, training=training))

    def compute_output_shape(self, x_shape, attention_bias_shape):
        return x_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "config": self.config}


@keras.saving.register_keras_serializable(package="blogml")
class AttentionBias(keras.layers.Layer):
    """[batch, seq] padding mask (1 = token) → additive [batch, 1, 1, seq] score bias."""

    def call(self, padding_mask):
        keep = ops.cast(padding_mask, self.compute_dtype)
        return ((1.0 - keep) * MASK_PENALTY)[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, 1, input_shape[1])


@keras.saving.register_keras_serializable(package="blogml")
class FirstToken(keras.layers.Layer):
    """The [CLS] position of a [batch, seq, hidden] sequence (the pooler's input)."""

    def call(self, x):
        return x[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


def build_bert(config: BertConfig, name: str = "bert") -> keras.Model:
    """A randomly initialised BERT (truncated normal, stddev 0.02, as Google's), as a
    functional model, so its layers can be reused inside larger NL2SQL models."""
    values = dataclasses.asdict(config)
    inputs = {key: keras.Input((None,), dtype="int32", name=key)
              for key in ("token_ids", "segment_ids", "padding_mask")}
    x = BertEmbeddings(values, name="embeddings")(inputs["token_ids"], inputs["segment_ids"])
    bias = AttentionBias(name="attention_bias")(inputs["padding_mask"])
    for i in range(config.num_hidden_layers):
        x = BertLayer(values, name=f"layer_{i}")(x, bias)
    pooled = keras.layers.Dense(config.hidden_size, activation="tanh",
                                kernel_initializer=_initializer(),
                                name="pooler_dense")(FirstToken(name="first_token")(x))
    return keras.Model(inputs, {"sequence_output": x, "pooled_output": pooled}, name=name)
