"""Typed HTTP client of the console API, used by the CI gate, scanner workers and enforcers.

`base.ConsoleClient` owns the connection, authentication and error translation; each use case
adds plain functions taking a client (`gate.py`, `jobs.py`, ...), so parts grow independently.
"""

from tidegate.client.base import ConsoleClient

__all__ = ["ConsoleClient"]
