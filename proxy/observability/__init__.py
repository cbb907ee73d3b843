"""Metrics and logs: one place each, both fed from the per-request record."""
