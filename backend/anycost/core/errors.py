"""Errors that reach a user as one clear sentence (CLI: one stderr line and exit code 2)."""


class AnycostError(Exception):
    """Base of every error meant for the user rather than for a traceback."""


class CheckpointError(AnycostError):
    """A model file is missing, corrupt, unsafe or of an unknown layout."""


class DownloadError(AnycostError):
    """A model could not be fetched; the message names the file to place by hand."""
