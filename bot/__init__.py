"""Waihu application core."""
