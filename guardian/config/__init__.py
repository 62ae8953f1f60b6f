"""Layer 1: config.yaml settings and the skills.yaml structure."""
