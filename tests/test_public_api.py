"""The public API is what `__all__` says, and nothing else slips into it unnoticed.

A change to these lists is an API change: update the snapshot here on purpose, with the release
notes in mind, never to make the test pass.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC: dict[str, list[str]] = {
    "tidegate": ["__version__"],
    "tidegate.versions": ["Comparator", "VersionKind", "comparator", "compare", "parse"],
    "tidegate.image": [
        "ImageReference",
        "ImageSource",
        "LayerItem",
        "LayerPaths",
        "Limits",
        "Platform",
        "ResolvedImage",
        "SourceOptions",
        "Transport",
        "open_image",
        "parse_reference",
        "squash",
    ],
    "tidegate.vulndb": [
        "DEFAULT_ECOSYSTEMS",
        "OSV_BASE_URL",
        "EcosystemUpdate",
        "ImportProblem",
        "ImportReport",
        "NullProgress",
        "Progress",
        "SourceStatus",
        "StoreStatus",
        "UpdateReport",
        "VulnStore",
        "compute_groups",
        "default_db_path",
        "download_dir",
        "ecosystem_family",
        "import_paths",
        "load_document",
        "normalize_name",
        "parse_record",
        "update",
    ],
    "tidegate.report": ["LazyWriter", "ReportOptions", "Writer", "get_writer", "writers"],
    "tidegate.scan": ["LayerCache", "ScanProgress", "scan_image"],
    "tidegate.errors": [
        "AuthError",
        "BundleError",
        "CacheError",
        "ConflictError",
        "ConsoleApiError",
        "ConsoleError",
        "ConsoleUnreachableError",
        "DatabaseUnavailableError",
        "DigestMismatchError",
        "FeedError",
        "ImageError",
        "ImageNotFoundError",
        "LayerError",
        "ManifestError",
        "NotFoundError",
        "ReferenceError_",
        "RegistryError",
        "ReportError",
        "StoreError",
        "TidegateError",
        "UsageError",
        "VersionError",
        "VulnDBError",
    ],
}


@pytest.mark.parametrize("module_name", list(PUBLIC))
def test_all_is_the_snapshot(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = module.__all__
    assert sorted(exported) == sorted(PUBLIC[module_name])
    assert len(set(exported)) == len(exported), "a name is listed twice"


@pytest.mark.parametrize("module_name", list(PUBLIC))
def test_every_public_name_exists(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing


@pytest.mark.parametrize("module_name", list(PUBLIC))
def test_nothing_public_outside_all(module_name: str) -> None:
    """Names defined in the module itself (not imported) that are public must be in __all__."""
    module = importlib.import_module(module_name)
    defined_here = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == module_name
    }
    assert defined_here <= set(module.__all__)


def test_errors_are_one_tree() -> None:
    errors = importlib.import_module("tidegate.errors")
    root = errors.TidegateError
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), root), name


def test_star_import_gives_exactly_all() -> None:
    for module_name, names in PUBLIC.items():
        namespace: dict[str, object] = {}
        exec(f"from {module_name} import *", namespace)
        assert set(namespace) - {"__builtins__"} == set(names), module_name
