"""Placeholder: filled by the service work."""
