"""Analyse one layer: stream its entries once, hand each wanted file to the analyzers.

The result, `LayerAnalysis`, depends only on the layer's bytes and the analyzers' versions, which
is what makes it cacheable by layer digest (see cache.py). Squashing layers into one filesystem
view happens afterwards, in apply.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from tidegate.analyzers.interface import Analyzer, AnalyzerError, FileConsumer
from tidegate.core.files import Entry, EntryKind
from tidegate.core.models import FileFindings, Location, Unknown
from tidegate.image.interface import EntryStream, LayerItem

CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LayerAnalysis:
    """What the analyzers found in one layer, plus what the layer hides of the layers below."""

    digest: str
    """Blob digest of the layer ("" for a root filesystem)."""
    diff_id: str
    paths: tuple[str, ...]
    """Every path the layer has an entry for (replacing whatever lower layers had there)."""
    non_dirs: tuple[str, ...]
    """Paths of entries that are not directories (they hide lower layers' entries below them)."""
    whiteouts: tuple[str, ...]
    opaques: tuple[str, ...]
    findings: tuple[FileFindings, ...]
    unknowns: tuple[Unknown, ...]
    """Entries the layer reader refused (hostile names, hard links to nothing ...)."""


ProgressFn = Callable[[int], None]
"""Called with the number of content bytes just handed to analyzers."""


def analyse_layer(
    items: Iterator[LayerItem],
    analyzers: Sequence[Analyzer],
    *,
    digest: str,
    diff_id: str,
    on_bytes: ProgressFn | None = None,
) -> LayerAnalysis:
    """Run `analyzers` over the entries of one layer, reading each wanted file exactly once."""
    layer = diff_id or None
    paths: list[str] = []
    non_dirs: list[str] = []
    whiteouts: list[str] = []
    opaques: list[str] = []
    findings: list[FileFindings] = []
    unknowns: list[Unknown] = []
    by_path: dict[str, tuple[Entry, list[FileFindings]]] = {}
    for item in items:
        if isinstance(item, Unknown):
            unknowns.append(item)
            continue
        entry, stream = item
        if entry.kind is EntryKind.WHITEOUT:
            whiteouts.append(entry.path)
            continue
        if entry.kind is EntryKind.OPAQUE:
            opaques.append(entry.path)
            continue
        paths.append(entry.path)
        if entry.kind is not EntryKind.DIR:
            non_dirs.append(entry.path)
        if entry.kind is EntryKind.FILE:
            found = _analyse_file(entry, stream, analyzers, layer, on_bytes)
            by_path[entry.path] = (entry, found)
            findings.extend(found)
        elif entry.kind is EntryKind.HARDLINK:
            found, missing = _relink(entry, by_path, analyzers, layer)
            findings.extend(found)
            unknowns.extend(missing)
    return LayerAnalysis(
        digest=digest,
        diff_id=diff_id,
        paths=tuple(paths),
        non_dirs=tuple(non_dirs),
        whiteouts=tuple(whiteouts),
        opaques=tuple(opaques),
        findings=tuple(findings),
        unknowns=tuple(unknowns),
    )


def _analyse_file(
    entry: Entry,
    stream: EntryStream | None,
    analyzers: Sequence[Analyzer],
    layer: str | None,
    on_bytes: ProgressFn | None,
) -> list[FileFindings]:
    wanting = [a for a in analyzers if a.wants(entry)]
    if not wanting or stream is None:
        return []
    consumers: list[tuple[Analyzer, FileConsumer]] = [(a, a.begin(entry, layer)) for a in wanting]
    while chunk := stream.read(CHUNK):
        for _, consumer in consumers:
            consumer.feed(chunk)
        if on_bytes is not None:
            on_bytes(len(chunk))
    results: list[FileFindings] = []
    for analyzer, consumer in consumers:
        try:
            found = consumer.finish()
        except AnalyzerError as exc:
            found = _unknown(analyzer.name, entry.path, str(exc), layer)
        if not found.empty:
            results.append(found)
    return results


def _relink(
    entry: Entry,
    by_path: dict[str, tuple[Entry, list[FileFindings]]],
    analyzers: Sequence[Analyzer],
    layer: str | None,
) -> tuple[list[FileFindings], list[Unknown]]:
    """A hard link shares its target's content: reuse what the analyzers found for the target.

    The layer stream cannot go back, so an analyzer that wants the link's path but did not read
    the target (its `wants` is path based) gets an Unknown instead of silence.
    """
    target = by_path.get(entry.link_target or "")
    if target is None:
        reason = f"hard link to {entry.link_target}, which is not earlier in this layer"
        return [], [Unknown(entry.path, reason, None, layer)]
    target_entry, target_findings = target
    as_file = Entry(
        path=entry.path,
        kind=EntryKind.FILE,
        mode=target_entry.mode,
        size=target_entry.size,
        uid=target_entry.uid,
        gid=target_entry.gid,
        mtime=target_entry.mtime,
    )
    found: list[FileFindings] = []
    unknowns: list[Unknown] = []
    read_by = {f.analyzer: f for f in target_findings}
    for analyzer in analyzers:
        if not analyzer.wants(as_file):
            continue
        if analyzer.wants(target_entry):
            if analyzer.name in read_by:
                found.append(relocate(read_by[analyzer.name], entry.path))
            continue
        reason = f"hard link to {target_entry.path}, whose content was not kept for {analyzer.name}"
        unknowns.append(Unknown(entry.path, reason, analyzer.name, layer))
    by_path[entry.path] = (as_file, found)
    return found, unknowns


def relocate(found: FileFindings, path: str) -> FileFindings:
    """The same findings, as seen at another path (a hard link's)."""
    packages = tuple(
        replace(
            p, locations=tuple(replace(loc, path=path) for loc in p.locations) or (Location(path),)
        )
        for p in found.packages
    )
    executable = replace(found.executable, path=path) if found.executable else None
    secrets = tuple(replace(s, path=path) for s in found.secrets)
    unknowns = tuple(replace(u, where=path) for u in found.unknowns)
    return replace(
        found,
        path=path,
        packages=packages,
        executable=executable,
        secrets=secrets,
        unknowns=unknowns,
    )


def _unknown(analyzer: str, path: str, reason: str, layer: str | None) -> FileFindings:
    return FileFindings(
        analyzer=analyzer, path=path, unknowns=(Unknown(path, reason, analyzer, layer),)
    )
