"""Errors caused by what the user gave us, as opposed to bugs.

The command line prints these as one line (naming the input at fault) without a traceback.
"""


class UserError(ValueError):
    """Bad input: an unreadable file, an unknown model, text outside the grammar, ..."""
