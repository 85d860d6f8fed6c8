"""Task metrics computed outside the training graph (NumPy, sqlite3, ...)."""
