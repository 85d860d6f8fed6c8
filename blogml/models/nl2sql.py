"""The seed's NL2SQL baseline: a BERT encoder and four heads (README: task: nl2sql).

Input: `[CLS] question [SEP] [CLS] header_1 [SEP] [CLS] header_2 [SEP] ...`. Heads:

- connector (none/and/or) from the first `[CLS]`;
- per column, from its `[CLS]`: one of the 6 aggregations or "not selected";
- per question token: one of the 4 operators or "not a value";
- per question token x column: which column a value token belongs to (trained towards an
  equal share for each column when one mention is the value of several conditions).

Every head is a softmax trained with cross-entropy, each masked to the positions where it
means something (real columns, question tokens, value tokens).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from blogml import replicas
from blogml.data.nl2sql_sql import HEADS, NOT_A_VALUE, NOT_SELECTED, NUM_CONNECTORS

BERT_INPUTS = ("token_ids", "segment_ids", "padding_mask")


def _masked_mean(loss, mask):
    """This replica's share of the mean of `loss` over the positions of the global batch
    where `mask` is 1 (0 when there are none): the sum over its own slice divided by the
    count over every replica, so the shares add up to the one-device mean (on one device,
    the mean itself). A mean per slice would weigh a slice with few value tokens as much
    as one with many."""
    mask = ops.cast(mask, loss.dtype)
    [count] = replicas.all_sum([ops.sum(mask)])
    return ops.sum(loss * mask) / ops.maximum(count, 1.0)


def _masked_cross_entropy(labels, logits, mask):
    loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    return _masked_mean(loss, mask)


def _shared_cross_entropy(slots, logits):
    """Cross-entropy against the uniform distribution over each token's columns: `slots`
    (`[..., LINK_SLOTS]`) holds the columns of the conditions whose value the token is part
    of, -1 for unused slots. One mention may be the value of several conditions (一类车和二类车
    都超过10000: 10000 for two columns); each of its columns then gets an equal share."""
    used = ops.cast(ops.greater_equal(slots, 0), logits.dtype)
    columns = ops.shape(logits)[-1]
    shares = ops.sum(ops.one_hot(ops.maximum(slots, 0), columns, dtype=logits.dtype)
                     * ops.expand_dims(used, -1), axis=-2)
    shares = shares / ops.maximum(ops.sum(shares, axis=-1, keepdims=True), 1.0)
    return keras.losses.categorical_crossentropy(shares, logits, from_logits=True)


class NL2SQLModel(keras.Model):
    """BERT + the four heads. Inputs (a dict): the BERT inputs plus `header_positions`
    (`[batch, columns]`, index of each column's `[CLS]`), `header_mask` (1 for real
    columns) and `question_mask` (1 for question tokens). Labels (a dict): `conn`, `agg`
    (per column), `op` (per token), `link` (per token, the columns of its value: LINK_SLOTS
    of them, -1 for unused) and `op_mask` (1 on the tokens whose `op` label is known)."""

    def __init__(self, encoder: keras.Model, link_units: int = 256, **kwargs) -> None:
        super().__init__(**kwargs)
        # The heads read token vectors only; BERT's pooler would get no gradient.
        encoder.get_layer("pooler_dense").trainable = False
        self.encoder = encoder
        self.conn_head = layers.Dense(NUM_CONNECTORS, name="connector")
        self.agg_head = layers.Dense(NOT_SELECTED + 1, name="column_aggregation")
        self.op_head = layers.Dense(NOT_A_VALUE + 1, name="token_operator")
        self.link_token = layers.Dense(link_units, name="link_token")
        self.link_column = layers.Dense(link_units, name="link_column")
        # No bias: one number added to every column's score leaves the softmax over columns
        # unchanged, so its gradient is pure rounding, which Adam would turn into full steps.
        self.link_score = layers.Dense(1, use_bias=False, name="link_score")
        # Keras tracks metrics set as attributes (in a dict too): `self.metrics` lists these.
        self.head_trackers = {name: keras.metrics.Mean(name=f"{name}_loss") for name in HEADS}

    def call(self, inputs: dict, training: bool = False) -> dict:
        encoded = self.encoder({k: inputs[k] for k in BERT_INPUTS},
                               training=training)["sequence_output"]
        length = ops.shape(encoded)[1]
        # Gather each column's [CLS] vector with a one-hot matmul: backend-neutral and cheap.
        pick = ops.one_hot(inputs["header_positions"], length, dtype=encoded.dtype)
        columns = ops.einsum("bcl,bld->bcd", pick, encoded)
        pair = ops.tanh(ops.expand_dims(self.link_token(encoded), 2)
                        + ops.expand_dims(self.link_column(columns), 1))
        link = ops.squeeze(self.link_score(pair), -1)  # [batch, tokens, columns]
        header_mask = ops.expand_dims(ops.cast(inputs["header_mask"], "bool"), 1)
        link = ops.where(header_mask, link, ops.cast(-1e4, link.dtype))
        logits = {"conn": self.conn_head(encoded[:, 0]), "agg": self.agg_head(columns),
                  "op": self.op_head(encoded), "link": link}
        # float32 under mixed precision: the cross-entropies take these logits as they are.
        return {name: ops.cast(value, "float32") for name, value in logits.items()}

    def head_losses(self, x: dict, y: dict, y_pred: dict) -> dict:
        """Each head's masked cross-entropy (this replica's share, see above)."""
        value_tokens = ops.cast(x["question_mask"], "int32") * ops.cast(
            ops.not_equal(y["op"], NOT_A_VALUE), "int32")
        return {
            "conn": _masked_cross_entropy(y["conn"], y_pred["conn"], ops.ones_like(y["conn"])),
            "agg": _masked_cross_entropy(y["agg"], y_pred["agg"], x["header_mask"]),
            # op_mask: the question tokens whose operator is known (all of them unless a
            # value could not be located; then only the located values' tokens).
            "op": _masked_cross_entropy(y["op"], y_pred["op"], y["op_mask"]),
            "link": _masked_mean(_shared_cross_entropy(y["link"], y_pred["link"]),
                                 value_tokens),
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return sum(self.head_losses(x, y, y_pred).values())

    def compute_metrics(self, x, y, y_pred, sample_weight=None) -> dict:
        super().compute_metrics(x, y, y_pred, sample_weight)
        for name, loss in self.head_losses(x, y, y_pred).items():
            # Each replica logs the global value its share stands for, as Keras does for the
            # loss; the logs are averaged over the replicas.
            self.head_trackers[name].update_state(loss * replicas.count())
        return self.get_metrics_result()
