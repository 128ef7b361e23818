"""Errors caused by what the user gave us, as opposed to bugs.

The command line prints these as one line (naming the input at fault) without a traceback.
"""


class UserError(ValueError):
    """Bad input: an unreadable file, an unknown model, text outside the grammar, ..."""


class SynthesisError(UserError):
    """A caption or edit command that cannot become an image; the message says why.

    The audit stores it as a failed probe with this reason; it never stops a run.
    """


def check_positive(**flags: float | None) -> None:
    """One line for the first flag (given by its field's name) set below 1; None is unset."""
    for name, value in flags.items():
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} {value}: must be at least 1")
