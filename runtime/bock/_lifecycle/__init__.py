"""One module per lifecycle operation (create, start, kill, delete, run, ...)."""
