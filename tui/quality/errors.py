"""The quality package's one error, importable without numpy (the CLI's parser imports it)."""


class QualityError(Exception):
    """A file that could not be measured: the reason, worded for the user."""
