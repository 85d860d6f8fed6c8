"""Reading Google's TF1 BERT checkpoints (`bert_model.ckpt.index` + `.data-*`).

The one place in blogml's models that imports TensorFlow, and only when a TF checkpoint is
read, so the models stay backend-neutral and a JAX or torch install without TensorFlow can
still load Hugging Face checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from blogml.errors import BlogmlError

TF_CONFIG, TF_INDEX, TF_PREFIX = "bert_config.json", "bert_model.ckpt.index", "bert_model.ckpt"


def read_tf_checkpoint(prefix: str | Path) -> tuple[dict[str, tuple], Callable[[str], np.ndarray]]:
    """(shape of every variable by name, a reader of one variable as numpy) of a checkpoint
    prefix such as `.../bert_model.ckpt`. Values are read only when asked for, so optimizer
    slots and pre-training heads in the file cost nothing."""
    try:
        import tensorflow as tf
    except ImportError:
        raise BlogmlError(f"{prefix}: reading a Google TF checkpoint needs TensorFlow "
                          "(pip install tensorflow-cpu), or convert it to model.safetensors"
                          ) from None
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        shapes = {name: tuple(shape) for name, shape in
                  reader.get_variable_to_shape_map().items()}
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", None) or str(error)
        raise BlogmlError(f"{prefix}: cannot read the TensorFlow checkpoint ({message})"
                          ) from None

    def read(name: str) -> np.ndarray:
        return np.asarray(reader.get_tensor(name))

    return shapes, read
