"""Deterministic rules: text normalization, the keyword research baseline. No model imports."""
