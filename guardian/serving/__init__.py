"""Layer 2: promotion targets and the models they serve."""
