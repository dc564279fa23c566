"""Rasa SDK custom actions for Waihu (run with `rasa run actions` from .venv)."""
