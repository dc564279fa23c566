"""Campaigns: definitions, contact lists, compliance, the dialer."""
