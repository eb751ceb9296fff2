"""Public API of Tidegate's version comparators: `compare(kind, a, b) -> int`.

>>> from tidegate.versions import compare
>>> compare("deb", "1.0~rc1-1", "1.0-1")
-1
"""

from __future__ import annotations

from tidegate.core.versions import Comparator, VersionKind, comparator, compare, parse

__all__ = ["Comparator", "VersionKind", "comparator", "compare", "parse"]
