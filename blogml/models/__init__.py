"""Keras 3 models (keras and keras.ops only, so they run on every backend)."""
