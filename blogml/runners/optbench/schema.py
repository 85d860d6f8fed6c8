"""Config schema of `task: optbench`."""

from blogml.config.common import task_schema
from blogml.config.schema import Float, Int, ListOf, Section, Str

DATA = Section({
    "num_train": Int(4096, "training examples", min=16),
    "num_val": Int(1024, "validation examples", min=1),
    "num_test": Int(1024, "test examples", min=1),
    "num_features": Int(32, "input dimensions", min=1),
    "num_classes": Int(10, "classes", min=2),
    "label_noise": Float(0.05, "fraction of labels replaced by a random class", min=0.0, max=1.0),
}, "synthetic classification set drawn from the seed (a random teacher network labels "
   "Gaussian inputs)")

MODEL = Section({
    "hidden_units": ListOf(Int(min=1), [128, 128], "widths of the hidden Dense layers"),
    "activation": Str("relu", "hidden activation", choices=["relu", "gelu", "tanh", "silu"]),
    "dropout": Float(0.0, "dropout rate after each hidden layer", min=0.0, max=0.9),
}, "multilayer perceptron")

METRICS = ["loss", "accuracy"]

SCHEMA = task_schema("optbench", data=DATA, model=MODEL, metrics=METRICS,
                     monitor="val_accuracy", monitor_mode="max")
