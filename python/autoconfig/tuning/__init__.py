"""Selectors beside the analytical model: configuration space, measurement, search, predictor."""
