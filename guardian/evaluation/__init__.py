"""Layer 2: metrics and the quality gate."""
