"""blogml: YAML config in, finished deep-learning experiment out."""

__version__ = "0.1.0"
