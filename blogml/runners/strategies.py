"""The `Distribution` a run's `distribution:` section asks for (kept apart from the classes,
so that the tf.distribute module can build on `distribution.Distribution` without a cycle)."""

from __future__ import annotations

from typing import Any

from blogml.errors import BlogmlError
from blogml.runners.distribution import DataParallel, Distribution


def create(section: dict[str, Any], batch_size: int) -> Distribution:
    """The distribution of a resolved `distribution:` section, for a global batch of
    `batch_size` (`train.batch_size`), which must give each replica an equal slice."""
    strategy = section["strategy"]
    if strategy == "none":
        return Distribution()
    if strategy == "data_parallel":
        distribution: Distribution = DataParallel(section["devices"])
    else:
        from blogml.runners import distribute_tf  # imports TensorFlow

        distribution = distribute_tf.TFStrategy(strategy, section["devices"],
                                                section["timeout"])
    if batch_size % distribution.replicas:
        distribution.close()
        raise BlogmlError(f"train.batch_size: {batch_size} does not split evenly over the "
                          f"{distribution.replicas} replicas of distribution.strategy "
                          f"{strategy}; make it a multiple of {distribution.replicas}")
    return distribution
