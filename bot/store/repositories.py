"""The old import path of the repositories, kept for the modules that still use it
(``actions/actions.py``).  The code is in :mod:`bot.store.repos`, one module per aggregate;
new code imports from :mod:`bot.store`."""

from bot.store.repos import *  # noqa: F403  (the whole public API of bot.store.repos)
