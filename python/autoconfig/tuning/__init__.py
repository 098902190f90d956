"""Selectors beside the analytical model (DESIGN.md, "Selectors"): the
configuration space (space), measuring candidates (measure), tuning logs
(log), the empirical search (search) and the selector registry (selectors).
Every selector maps a Task to a Config of space() and plan_for() turns it
into the Plan the models produce."""
