"""Which process of a `multi_worker` run this is, from $TF_CONFIG.

Read without TensorFlow: planning decides who owns the run directory before Keras (and so
the backend) is imported.
"""

from __future__ import annotations

import json
import os
from typing import Any

from blogml.errors import BlogmlError


def is_chief_process(section: dict[str, Any]) -> bool:
    """Whether this process writes the run directory: false only for the non-chief
    workers of a `multi_worker` run, read from $TF_CONFIG (before TensorFlow starts)."""
    if section["strategy"] != "multi_worker":
        return True
    try:
        tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError as error:
        raise BlogmlError(f"$TF_CONFIG is not valid JSON ({error})") from None
    task = tf_config.get("task") or {}
    cluster = tf_config.get("cluster") or {}
    task_type, task_id = task.get("type"), int(task.get("index", 0))
    if task_type is None:
        return True  # no cluster: one local worker
    # tf.distribute's rule: the `chief` task, or worker 0 in a cluster without one.
    return task_type == "chief" or (task_type == "worker" and task_id == 0
                                    and "chief" not in cluster)
