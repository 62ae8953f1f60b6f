"""Layer 1: the SQLite state (runs, steps, champions, jobs) and the content-addressed artifacts."""
