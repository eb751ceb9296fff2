"""The enforcer's fatal errors: a state directory that cannot be used, a request that cannot be
decided. Both join the package's one tree under `TidegateError`."""

from __future__ import annotations

from tidegate.core.errors import TidegateError

__all__ = ["EnforcerError", "StateDirError"]


class EnforcerError(TidegateError):
    """The enforcer cannot do what was asked (the message says what and why)."""


class StateDirError(EnforcerError):
    """The state directory (bundle cache, spool, identity) cannot be read or written."""
