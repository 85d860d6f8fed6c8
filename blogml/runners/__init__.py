"""Runners: one per task, all on `BaseRunner`. Importing this package does not import Keras."""
