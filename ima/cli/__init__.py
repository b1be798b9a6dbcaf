"""The `ima` command (a drop-in for the vendor skill's script): `ima.cli:main` is the entry point."""

from .main import main

__all__ = ["main"]
