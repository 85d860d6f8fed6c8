"""The `blogml` command line: parses arguments and dispatches; the work lives elsewhere."""
