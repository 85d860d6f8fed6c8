"""What blogml can train, without Keras: the task registry, each task's config schema,
the optimizer benchmark's problems, and the check of a config against them.

Layer rule: imports config, data and errors only; runners, the benchmark and the CLI
consult it, and name their Keras side to it by "module:attribute" paths.
"""
