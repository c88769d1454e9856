"""Athar (أثر, "trace, evidence"): an offline evidence vault for documenters of violations."""

__version__ = "0.1.0"
