"""Registry adapters: the distribution API and Harbor, chosen by `RegistryKind`."""

from __future__ import annotations

import httpx

from tidegate.integrations.registries.distribution import DistributionRegistry, split_url
from tidegate.integrations.registries.harbor import HarborRegistry
from tidegate.integrations.registries.interface import (
    ConnectionProblem,
    ConnectionReport,
    RegistryAdapter,
    RegistryConnection,
    RegistryKind,
    TagInfo,
)

__all__ = [
    "ConnectionProblem",
    "ConnectionReport",
    "DistributionRegistry",
    "HarborRegistry",
    "RegistryAdapter",
    "RegistryConnection",
    "RegistryKind",
    "TagInfo",
    "adapter_for",
    "split_url",
]


def adapter_for(
    kind: RegistryKind, conn: RegistryConnection, *, transport: httpx.BaseTransport | None = None
) -> RegistryAdapter:
    match kind:
        case RegistryKind.DISTRIBUTION:
            return DistributionRegistry(conn, transport=transport)
        case RegistryKind.HARBOR:
            return HarborRegistry(conn, transport=transport)
