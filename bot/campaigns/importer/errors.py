"""The error that stops an import as a whole.

In a module of its own so that every part of the importer can raise it without importing the
package's ``__init__`` (which imports those parts); ``bot.campaigns.importer`` re-exports it.
"""

class ContactImportError(ValueError):
    """The file as a whole cannot be imported (unknown campaign, unreadable file, a required
    column missing); nothing was written."""


