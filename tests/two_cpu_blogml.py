"""`blogml ARGS` with TensorFlow given two logical CPU devices (for the mirrored tests).

The devices must be configured before TensorFlow initialises them, which the test process
may already have done; so the distribution tests run this script in a fresh process.
"""

from __future__ import annotations

import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from blogml.cli.main import cli  # noqa: E402

if __name__ == "__main__":
    cli(sys.argv[1:], prog_name="blogml")
