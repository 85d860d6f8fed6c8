"""Config files: YAML reading, `--set` overrides, the schema primitives and the sections
every task shares (never imports Keras: `blogml config check` stays fast). Checking a config
against its task is `blogml.tasks.configs`."""

from blogml.config.loader import LoadedConfig, dump_config, parse_overrides

__all__ = ["LoadedConfig", "dump_config", "parse_overrides"]
