"""`task: optbench`: one optimizer on one synthetic problem (the runner's proving ground)."""
