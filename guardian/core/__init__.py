"""Layer 0: records, files, git and YAML helpers that every other package builds on."""
