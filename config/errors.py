"""The root of Recog's errors, and the one raised for a wrong setting or procedure definition.

It lives in ``config`` because ``config`` is the bottom layer: everything may import it.
"""

from __future__ import annotations


class RecogError(Exception):
    """Base of every error Recog reports to a person. ``str(err)`` is the sentence shown."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(RecogError):
    """A setting or the procedure definition is wrong; raised at start-up."""

    code = "configuration"
