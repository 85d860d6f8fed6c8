"""Benchmarks over many runs: `blogml bench optimizers` (MISSION §3).

A bench file names problems, optimizer configs and seeds; every cell of that grid is an
ordinary `task: optbench` run in the bench directory, and results.csv, report.md and the
plots are read back from those runs' own records. `schema` and `grid` never import Keras.
"""
