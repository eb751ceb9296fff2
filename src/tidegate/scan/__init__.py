"""The scan pipeline: image -> layers analysed (or read from the cache) -> squashed -> catalogue.

`scan_image` takes its parts as arguments: the image source, the analyzers, the cache, a progress
sink and a clock. Matching against the vulnerability DB is `tidegate.scan.match`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from tidegate.analyzers import default_analyzers
from tidegate.analyzers.config import facts_from_config
from tidegate.analyzers.interface import Analyzer
from tidegate.core.models import LayerInfo, ScanResult
from tidegate.image.interface import ImageSource, ResolvedImage
from tidegate.scan.apply import layer_unknowns, visible_findings
from tidegate.scan.cache import LayerCache, cache_key
from tidegate.scan.catalogue import build_catalogue
from tidegate.scan.layers import LayerAnalysis, analyse_layer

__all__ = ["LayerCache", "ScanProgress", "scan_image"]


class ScanProgress(Protocol):
    """Where a scan reports how far it is (the CLI draws bars; tests and CI pass nothing)."""

    def resolved(self, image: ResolvedImage) -> None: ...

    def layer_started(self, index: int, layer: LayerInfo) -> None: ...

    def layer_bytes(self, index: int, n: int) -> None: ...

    def layer_done(self, index: int, *, cached: bool) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def scan_image(
    source: ImageSource,
    *,
    analyzers: Sequence[Analyzer] | None = None,
    cache: LayerCache | None = None,
    progress: ScanProgress | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> ScanResult:
    """Read every layer of `source` once (or from `cache`) and catalogue the squashed image."""
    active = list(analyzers) if analyzers is not None else default_analyzers()
    image = source.resolve()
    if progress is not None:
        progress.resolved(image)
    layers = [
        _layer(source, layer, i, active, cache, progress) for i, layer in enumerate(image.layers)
    ]
    catalogue, groups = build_catalogue(visible_findings(layers), layer_unknowns(layers))
    annotations = _annotations(image)
    facts, fact_unknowns = facts_from_config(image.config, catalogue.users, groups, annotations)
    if fact_unknowns:
        catalogue = replace(catalogue, unknowns=(*catalogue.unknowns, *fact_unknowns))
    return ScanResult(
        image=image.info,
        facts=facts,
        catalogue=catalogue,
        scanned_at=clock(),
        analyzers=tuple(sorted((a.name, a.version) for a in active)),
    )


def _layer(
    source: ImageSource,
    layer: LayerInfo,
    index: int,
    analyzers: Sequence[Analyzer],
    cache: LayerCache | None,
    progress: ScanProgress | None,
) -> LayerAnalysis:
    if progress is not None:
        progress.layer_started(index, layer)
    key = cache_key(layer.digest, analyzers) if cache is not None and layer.digest else None
    if cache is not None and key is not None:
        hit = cache.get(key)
        if hit is not None:
            if progress is not None:
                progress.layer_done(index, cached=True)
            return hit
    on_bytes = (lambda n: progress.layer_bytes(index, n)) if progress is not None else None
    with source.open_layer(layer) as items:
        analysis = analyse_layer(
            items, analyzers, digest=layer.digest, diff_id=layer.diff_id, on_bytes=on_bytes
        )
    # Stored only now: open_layer has verified the blob digest when the stream ended.
    if cache is not None and key is not None:
        cache.put(key, analysis)
    if progress is not None:
        progress.layer_done(index, cached=False)
    return analysis


def _annotations(image: ResolvedImage) -> dict[str, str]:
    return dict(image.annotations)
