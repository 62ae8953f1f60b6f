"""Layer 5: `guardian run`, the long-running service: watch, queue, schedule, work, survive."""
