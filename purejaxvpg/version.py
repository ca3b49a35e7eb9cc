"""The package's version, single-sourced from pyproject.toml through the installed metadata
(`purejaxvpg.__version__`, `purejaxvpg --version`, config.json's "version")."""

import importlib.metadata

try:
    __version__ = importlib.metadata.version("purejaxvpg")
except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
