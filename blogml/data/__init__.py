"""Data loaders: backend-neutral NumPy batches with a deterministic, resumable order."""
