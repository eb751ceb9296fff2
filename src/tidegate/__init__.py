"""Tidegate: open-source container security, from "we only watch" to "we block"."""

__version__ = "0.1.0"

__all__ = ["__version__"]
