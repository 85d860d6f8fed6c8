"""A bag-of-tokens classifier: Embedding → mean over the bag → Dense logits.

Its embedding table (the variable `embedding/embeddings`, Keras's own name, which
`optimizer.lazy.include: [embeddings]` matches) receives a gradient only in the rows of
the tokens in the batch: the setting where lazy optimizer updates matter.
"""

from __future__ import annotations

import keras


def build_embedding_bag(vocab_size: int, bag_length: int, embedding_dim: int,
                        num_classes: int) -> keras.Model:
    """Token id 0 is padding: masked out of the mean (and so never given a gradient)."""
    ids = keras.Input((bag_length,), dtype="int32", name="token_ids")
    vectors = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True,
                                     name="embedding")(ids)
    pooled = keras.layers.GlobalAveragePooling1D(name="bag_mean")(vectors)
    # float32 logits under mixed precision, so the softmax and loss are too.
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(pooled)
    return keras.Model(ids, logits, name="embedding_bag")
