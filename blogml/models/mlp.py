"""A multilayer perceptron classifier."""

from __future__ import annotations

import keras


def build_mlp(num_features: int, num_classes: int, hidden_units: list[int],
              activation: str = "relu", dropout: float = 0.0, seed: int = 0) -> keras.Model:
    """Dense layers with `activation` (and dropout), then a linear layer giving class logits
    (in float32 under mixed precision, so the softmax and loss are too)."""
    inputs = keras.Input((num_features,), name="features")
    hidden = inputs
    for i, units in enumerate(hidden_units):
        hidden = keras.layers.Dense(units, activation=activation, name=f"dense_{i}")(hidden)
        if dropout:
            hidden = keras.layers.Dropout(dropout, seed=seed + i, name=f"dropout_{i}")(hidden)
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(hidden)
    return keras.Model(inputs, logits, name="mlp")
