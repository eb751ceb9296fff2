"""The exception tree of Tidegate: every fatal error raised by the package is one of these.

    TidegateError                 base of everything Tidegate raises on purpose
    +-- UsageError                a bad argument or option given by the user (names it)
    |   +-- ProfileError          a runtime profile, profiling session or observation that is
    |                             malformed (names the field)
    +-- ReferenceError_           an image reference that cannot be parsed
    +-- ImageError                the image cannot be read as a whole
    |   +-- ImageNotFoundError    the reference names nothing (missing dir/file/tag/manifest)
    |   +-- ManifestError         a manifest, index or config that is malformed or unsupported
    |   +-- DigestMismatchError   a blob whose content does not match the digest that names it
    |   +-- LayerError            a layer that cannot be read (truncated, bomb, bad compression)
    |   +-- RegistryError         the registry answered with an error
    |       +-- AuthError         credentials missing or refused (401/403)
    +-- VersionError              a version string an ecosystem comparator cannot parse
    +-- VulnDBError               the vulnerability database cannot be read or built
    |   +-- FeedError             a feed record or archive that is malformed
    +-- ReportError               an output document cannot be produced
    +-- CacheError                the layer cache cannot be used (it is then bypassed)
    +-- BundleError               a policy bundle (or runtime policy document) that is malformed
    +-- StoreError                the console's database cannot be used as asked
    |   +-- DatabaseUnavailableError  unreachable, or not at the schema this code expects
    |   +-- NotFoundError         a record named by the caller does not exist
    |   +-- ConflictError         a change would break a uniqueness or consistency rule
    +-- ConsoleError              talking to a Tidegate console failed
        +-- ConsoleUnreachableError  no answer (connection refused, DNS, timeout, TLS)
        +-- ConsoleApiError         the console answered with an error status

Partial failures are not exceptions: they are `Unknown` values in the result (see core.models).
Policy failures are verdict values, never exceptions. Third-party errors are translated at the
boundary where they happen (`raise ImageError(...) from exc`).
"""

from __future__ import annotations


class TidegateError(Exception):
    """Base of every error Tidegate raises on purpose."""


class UsageError(TidegateError):
    """A bad argument or option; the message names it and says what is expected."""


class ProfileError(UsageError):
    """A runtime profile, profiling session or observation that is malformed; names the field.

    A UsageError: it is always the caller's input (an API body, a YAML document, an upload)."""


class ReferenceError_(TidegateError):
    """An image reference that cannot be parsed."""


class ImageError(TidegateError):
    """The image cannot be read as a whole."""


class ImageNotFoundError(ImageError):
    """The reference names nothing: a missing directory, file, tag or manifest."""


class ManifestError(ImageError):
    """A manifest, index or image config that is malformed or of an unsupported type."""


class DigestMismatchError(ImageError):
    """A blob whose content does not hash to the digest that names it."""


class LayerError(ImageError):
    """A layer that cannot be read: truncated, not a tar, a decompression bomb..."""


class RegistryError(ImageError):
    """The registry answered with an error."""


class AuthError(RegistryError):
    """Credentials are missing or were refused by the registry or its token service."""


class VersionError(TidegateError):
    """A version string that an ecosystem comparator cannot parse."""


class VulnDBError(TidegateError):
    """The vulnerability database cannot be read, built or replaced."""


class FeedError(VulnDBError):
    """A feed record or archive that is malformed."""


class ReportError(TidegateError):
    """An output document cannot be produced."""


class CacheError(TidegateError):
    """The layer cache cannot be used."""


class ConsoleError(TidegateError):
    """Talking to a Tidegate console failed."""


class ConsoleUnreachableError(ConsoleError):
    """The console did not answer: connection refused, name not resolved, timeout, TLS failure."""


class ConsoleApiError(ConsoleError):
    """The console answered with an error status."""

    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class StoreError(TidegateError):
    """The database cannot be used as asked."""


class DatabaseUnavailableError(StoreError):
    """The database cannot be reached, or its schema is not the one this code expects."""


class NotFoundError(StoreError):
    """A record named by the caller does not exist."""


class ConflictError(StoreError):
    """A change would break a uniqueness or consistency rule (a duplicate name...)."""


class BundleError(TidegateError):
    """A policy bundle (or a runtime policy / service document) that is malformed."""
