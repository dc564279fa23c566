"""bench/console.py's parts: the world it sets up, the calls it plays as the gateway, the
agents' pages in Chromium, and the figures."""
