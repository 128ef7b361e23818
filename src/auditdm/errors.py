"""Errors caused by what the user gave us, as opposed to bugs.

The command line prints these as one line (naming the input at fault) without a traceback.
"""


class UserError(ValueError):
    """Bad input: an unreadable file, an unknown model, text outside the grammar, ..."""


class SynthesisError(UserError):
    """A caption or edit command that cannot become an image; the message says why.

    The audit stores it as a failed probe with this reason; it never stops a run.
    """
