"""Tidegate's exceptions; the tree is drawn in `tidegate.core.errors`."""

from tidegate.core.errors import (
    AuthError,
    CacheError,
    DigestMismatchError,
    FeedError,
    ImageError,
    ImageNotFoundError,
    LayerError,
    ManifestError,
    ReferenceError_,
    RegistryError,
    ReportError,
    TidegateError,
    UsageError,
    VersionError,
    VulnDBError,
)

__all__ = [
    "AuthError",
    "CacheError",
    "DigestMismatchError",
    "FeedError",
    "ImageError",
    "ImageNotFoundError",
    "LayerError",
    "ManifestError",
    "ReferenceError_",
    "RegistryError",
    "ReportError",
    "TidegateError",
    "UsageError",
    "VersionError",
    "VulnDBError",
]
