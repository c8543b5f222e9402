"""selenite: an open toolkit for the whole lunar landing.

Before the mission it ranks south-pole landing sites; after touchdown it locates the lander from its
descent camera and dates the surface it landed on.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("selenite")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
