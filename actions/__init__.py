"""Rasa SDK custom actions for Waihu: `python -m actions.server` from .venv, with
WAIHU_ACTIONS_TOKEN set (actions/server.py; `rasa run actions` would start an open server)."""
