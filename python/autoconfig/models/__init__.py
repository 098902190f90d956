"""Analytical performance models, one module per operator family."""
