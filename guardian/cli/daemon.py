"""`guardian run`, `guardian status`: the daemon's commands."""
