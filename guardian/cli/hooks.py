"""Placeholder: filled by the hooks work."""
