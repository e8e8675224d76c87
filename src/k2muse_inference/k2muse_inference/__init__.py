"""Real-time hip-moment estimation from hip angle with a per-mode TCN ensemble."""
