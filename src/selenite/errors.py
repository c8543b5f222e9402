"""The SeleniteError family.

Every mistake a user can make (a missing file, a raster without CRS, a bad configuration value, an empty
folder) raises one of these. The command line turns them into one clear line on stderr and exit code 2;
anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class SeleniteError(Exception):
    """Base class of every error that is the user's to fix."""

    exit_code = 2


class InputError(SeleniteError):
    """An input path is missing, unreadable, empty or of the wrong kind."""


class RasterError(InputError):
    """A raster cannot be opened, has no CRS, or has the wrong CRS."""


class VectorError(InputError):
    """A vector file cannot be read or lacks what is needed."""


class ConfigError(SeleniteError):
    """A configuration file or value is invalid."""


class RunError(SeleniteError):
    """A run folder is unusable (not a run, or in use by an incompatible run)."""


class VerificationError(SeleniteError):
    """A run folder's files do not match its manifest."""

    exit_code = 1


class SynthError(SeleniteError):
    """A synthetic world cannot be built with the requested settings."""
