"""The enforcer's fatal errors: a state directory that cannot be used, a request that cannot be
decided, a compiled hook that cannot be built. All join the package's one tree under
`TidegateError`.

    EnforcerError          the enforcer cannot do what was asked
    +-- StateDirError      the state directory cannot be read or written
    +-- HookBuildError     the compiled OCI hook cannot be built (no compiler, or it failed)
"""

from __future__ import annotations

from tidegate.core.errors import TidegateError

__all__ = ["EnforcerError", "HookBuildError", "StateDirError"]


class EnforcerError(TidegateError):
    """The enforcer cannot do what was asked (the message says what and why)."""


class StateDirError(EnforcerError):
    """The state directory (bundle cache, spool, identity) cannot be read or written."""


class HookBuildError(EnforcerError):
    """The compiled OCI hook cannot be built: no C compiler, or the compiler failed (the message
    names the compiler and carries its stderr)."""
