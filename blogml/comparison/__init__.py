"""The optimizer comparison behind `blogml bench optimizers` (the speed scripts of the
repository are `benchmarks/`, outside the package).

A bench file names problems, optimizer configs and seeds; every cell of that grid is an
ordinary `task: optbench` run in the bench directory, and results.csv, report.md and the
plots are read back from those runs' own records. `schema` and `grid` never import Keras.
"""
