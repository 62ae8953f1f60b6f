"""Layer 4: the pipeline runner, its plan, cache keys, outcomes and reports."""
