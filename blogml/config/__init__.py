"""Config loading and validation (never imports Keras: `blogml config check` stays fast)."""

from blogml.config.loader import LoadedConfig, dump_config, load_configs, parse_overrides

__all__ = ["LoadedConfig", "dump_config", "load_configs", "parse_overrides"]
