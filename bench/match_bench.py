"""Matching benchmark: a generated vulnerability DB of 300,000+ advisories and a catalogue of
3,000+ packages. Figures, all measured in the same run on the same database file:

- import: `tidegate.vulndb.import_paths` of the generated OSV zip (records/s), against the
  baseline of only reading and JSON-decoding every zip member (the least any importer does);
- match: `tidegate.scan.match.match_result` of the catalogue in a fresh process (nothing cached
  anywhere, not even parsed versions: what a CLI scan sees), on a freshly opened store in this
  process (store caches cold, module-level version caches warm), and on an already used store
  (warm, as a scanner worker sees it), against the baseline of one plain
  `SELECT entry FROM affected WHERE ecosystem=? AND name=?` per package on the same file.
  Target: cold match (fresh process) under 200 ms.
- check: before timing, each scenario's findings are compared with those of the matcher's
  reference path (a source offering only `advisories_for` and the alias-group questions: full
  records decoded, every range walked with `compare`); any difference stops the benchmark
  (`--no-verify` skips it).

The zip and the database are generated once (deterministic, seeded) and cached under
~/.cache/tidegate-bench/match-v1/ ($TIDEGATE_BENCH_CACHE or --cache-dir to move it);
`--rebuild` regenerates them (and so measures the import again; a cached run reports the import
figures recorded when the database was built).

Run: `.venv/bin/python bench/match_bench.py [--json] [--repeat N] [--check]`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tidegate.core.advisory import Advisory, AffectedPackage, Rating
from tidegate.core.errors import VulnDBError
from tidegate.core.models import (
    Catalogue,
    ImageFacts,
    ImageInfo,
    Location,
    OSInfo,
    Package,
    PackageType,
    ScanResult,
)
from tidegate.scan.match import match_result
from tidegate.vulndb import VulnStore, import_paths

CACHE_VERSION = "match-v1"
MATCH_TARGET_MS = 200.0
SEED = 20261126

# Advisories per ecosystem (sum 320,000) and how many distinct package names they spread over.
ECOSYSTEMS: dict[str, tuple[int, int]] = {
    "Debian:12": (110_000, 4_000),
    "Alpine:v3.18": (40_000, 1_500),
    "PyPI": (60_000, 6_000),
    "npm": (60_000, 8_000),
    "Go": (25_000, 2_500),
    "Maven": (25_000, 3_000),
}
# Catalogue: an image of Debian 12 with these many packages of each type (sum 3,200).
CATALOGUE = {"deb": 1_600, "pypi": 600, "npm": 700, "golang": 150, "maven": 150}
# The realistic catalogue (same size and mix): the share of packages whose name has advisories
# at all (the rest are names no record mentions, as most packages of a real image), and the
# share of those left at an old version (the rest are past every fixed version: a maintained
# image, where what still matches is the unfixed ranges).
REALISTIC_WITH_RECORDS = 0.2
REALISTIC_OUTDATED = 0.05
SCENARIOS = ("dense", "realistic")

CVSS = (
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
)


def package_name(ecosystem: str, i: int) -> str:
    family = ecosystem.split(":", 1)[0]
    match family:
        case "Debian" | "Alpine":
            return f"src{i}"
        case "PyPI":
            return f"py-pkg{i}"
        case "npm":
            return f"js-pkg{i}"
        case "Go":
            return "stdlib" if i == 0 else f"example.com/mod{i}/v2"
        case _:
            return f"org.example{i % 97}:artifact{i}"


def version(family: str, major: int, minor: int, patch: int) -> str:
    match family:
        case "Debian":
            return f"{major}.{minor}.{patch}-1+deb12u{patch % 4}"
        case "Alpine":
            return f"{major}.{minor}.{patch}-r{patch % 5}"
        case "Maven":
            return f"{major}.{minor}.{patch}.Final" if patch % 2 else f"{major}.{minor}.{patch}"
        case _:
            return f"{major}.{minor}.{patch}"


def _record(ecosystem: str, n: int, rng: random.Random, modified: str) -> dict[str, object]:
    family = ecosystem.split(":", 1)[0]
    name = package_name(ecosystem, rng.randrange(ECOSYSTEMS[ecosystem][1]))
    cve = f"CVE-{2010 + n % 15}-{100000 + n}"
    prefix = {"Debian": "DEBIAN-", "Alpine": "ALPINE-", "PyPI": "PYSEC-", "Go": "GO-"}.get(family)
    vid = f"{prefix}{cve}" if prefix else f"GHSA-{n:08x}-bench"
    major, minor = rng.randrange(1, 6), rng.randrange(0, 20)
    events: list[dict[str, str]] = [
        {"introduced": "0" if rng.random() < 0.5 else version(family, major, 0, 0)}
    ]
    if rng.random() < 0.9:  # most are fixed; the rest are open (unfixed) ranges
        events.append({"fixed": version(family, major, minor, rng.randrange(1, 30))})
    ranges: list[dict[str, object]] = [{"type": "ECOSYSTEM", "events": events}]
    if family in ("PyPI", "Go", "npm") and rng.random() < 0.3:
        older = version(family, max(major - 1, 0), 0, 0)
        ranges.append(
            {"type": "ECOSYSTEM", "events": [{"introduced": older}, {"fixed": f"{major}.0.0"}]}
        )
        ranges.append(
            {
                "type": "GIT",
                "repo": f"https://example.com/{n}.git",
                "events": [{"introduced": "0"}, {"fixed": f"{n:040x}"}],
            }
        )
    affected: dict[str, object] = {
        "package": {"ecosystem": ecosystem, "name": name},
        "ranges": ranges,
    }
    if family == "Debian":
        kind = "fixed" if len(events) > 1 else rng.choice(("unfixed", "no-dsa", "postponed"))
        affected["ecosystem_specific"] = {"urgency": "not yet assigned", "tracker_kind": kind}
    record: dict[str, object] = {
        "schema_version": "1.6.0",
        "id": vid,
        "modified": modified,
        "published": modified,
        "summary": f"generated advisory {n} for {name}",
        "details": "Generated by bench/match_bench.py. " * 4,
        "affected": [affected],
        "references": [{"type": "WEB", "url": f"https://example.com/advisories/{n}"}],
    }
    if family in ("Debian", "Alpine"):
        record["upstream"] = [cve]
    else:
        record["aliases"] = [cve, f"GHSA-{n:08x}-alias"] if family == "PyPI" else [cve]
    if family not in ("Debian", "Alpine") or rng.random() < 0.2:
        record["severity"] = [{"type": "CVSS_V3", "score": rng.choice(CVSS)}]
    return record


def generate_records(seed: int = SEED) -> Iterator[tuple[str, dict[str, object]]]:
    """(member name, OSV record) for every generated advisory, deterministic for `seed`."""
    rng = random.Random(seed)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    n = 0
    for ecosystem, (count, _) in ECOSYSTEMS.items():
        folder = ecosystem.split(":", 1)[0]
        for _ in range(count):
            n += 1
            modified = (base + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
            record = _record(ecosystem, n, rng, modified)
            yield f"{folder}/{record['id']}.json", record


def write_zip(path: Path) -> int:
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for member, record in generate_records():
            zf.writestr(member, json.dumps(record, separators=(",", ":")))
            count += 1
    tmp.replace(path)
    return count


def catalogue_packages(seed: int = SEED) -> list[Package]:
    """The image's packages: names drawn from the generated pools (so most have records)."""
    rng = random.Random(seed + 1)
    packages: list[Package] = []
    for i in range(CATALOGUE["deb"]):
        src = package_name("Debian:12", rng.randrange(ECOSYSTEMS["Debian:12"][1] + 500))
        ver = version("Debian", rng.randrange(1, 6), rng.randrange(0, 20), rng.randrange(0, 30))
        packages.append(_pkg(f"lib{src}-{i}", ver, PackageType.DEB, src))
    for kind, eco, ptype in (
        ("pypi", "PyPI", PackageType.PYPI),
        ("npm", "npm", PackageType.NPM),
        ("golang", "Go", PackageType.GOLANG),
        ("maven", "Maven", PackageType.MAVEN),
    ):
        for _ in range(CATALOGUE[kind]):
            name = package_name(eco, rng.randrange(ECOSYSTEMS[eco][1] + 200))
            ver = version(eco, rng.randrange(1, 6), rng.randrange(0, 20), rng.randrange(0, 30))
            packages.append(_pkg(name, ver, ptype, None))
    return packages


def realistic_packages(seed: int = SEED) -> list[Package]:
    """The same image size and mix as `catalogue_packages`, at a real image's finding density.

    A share `REALISTIC_WITH_RECORDS` of the names come from the advisory pools (the rest are
    names no record mentions); of those, a share `REALISTIC_OUTDATED` stay at a random old
    version, the others are at a maintained version above every generated fixed version (major
    6), so only open (unfixed) ranges still match them."""
    rng = random.Random(seed + 2)
    packages: list[Package] = []
    kinds = (
        ("deb", "Debian:12", "Debian", PackageType.DEB),
        ("pypi", "PyPI", "PyPI", PackageType.PYPI),
        ("npm", "npm", "npm", PackageType.NPM),
        ("golang", "Go", "Go", PackageType.GOLANG),
        ("maven", "Maven", "Maven", PackageType.MAVEN),
    )
    for kind, eco, family, ptype in kinds:
        pool = ECOSYSTEMS[eco][1]
        for i in range(CATALOGUE[kind]):
            if rng.random() < REALISTIC_WITH_RECORDS:
                name = package_name(eco, rng.randrange(pool))
                major = rng.randrange(1, 6) if rng.random() < REALISTIC_OUTDATED else 6
            else:
                name = package_name(eco, pool + 1_000 + i)
                major = rng.randrange(1, 7)
            ver = version(family, major, rng.randrange(0, 20), rng.randrange(0, 30))
            if ptype is PackageType.DEB:
                packages.append(_pkg(f"lib{name}-{i}", ver, ptype, name))
            else:
                packages.append(_pkg(name, ver, ptype, None))
    return packages


def scenario_packages(scenario: str) -> list[Package]:
    return realistic_packages() if scenario == "realistic" else catalogue_packages()


def _pkg(name: str, ver: str, ptype: PackageType, source: str | None) -> Package:
    return Package(
        name=name,
        version=ver,
        type=ptype,
        found_by="bench",
        locations=(Location(f"/bench/{ptype.value}/{name}"),),
        source_name=source,
        source_version=ver if source else None,
    )


def scan_result(packages: list[Package]) -> ScanResult:
    os_info = OSInfo(id="debian", version_id="12", pretty_name="Debian GNU/Linux 12 (bookworm)")
    return ScanResult(
        image=ImageInfo(reference="bench", transport="bench", manifest_digest="sha256:" + "0" * 64),
        facts=ImageFacts(),
        catalogue=Catalogue(os=os_info, packages=tuple(packages)),
        scanned_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    unit: str
    median: float
    samples: tuple[float, ...]
    target: str = ""
    met: bool | None = None


@dataclass(slots=True)
class Scenario:
    """The match figures of one catalogue against the database."""

    name: str
    packages: int
    findings: int
    figures: list[Figure] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Result:
    advisories: int
    affected_rows: int
    scenarios: list[Scenario] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    """Import figures."""
    ratios: dict[str, float] = field(default_factory=dict)


def cache_dir(given: Path | None) -> Path:
    root = given or Path(
        os.environ.get("TIDEGATE_BENCH_CACHE", Path.home() / ".cache" / "tidegate-bench")
    )
    path = root / CACHE_VERSION
    path.mkdir(parents=True, exist_ok=True)
    return path


def baseline_read(zip_path: Path) -> tuple[float, int]:
    """Seconds to inflate and json-decode every member: the floor of any importer."""
    start = time.perf_counter()
    count = 0
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            json.loads(zf.read(info))
            count += 1
    return time.perf_counter() - start, count


def prepare(directory: Path, rebuild: bool, log: list[str]) -> tuple[Path, dict[str, float]]:
    """The generated zip and DB (built when missing), and the import figures of their build."""
    zip_path, db, figures_file = (
        directory / "osv-bench.zip",
        directory / "vulns.db",
        directory / "import.json",
    )
    if rebuild:
        for p in (zip_path, db, figures_file):
            p.unlink(missing_ok=True)
    if not zip_path.exists():
        log.append(f"generating {zip_path} ...")
        write_zip(zip_path)
    if db.exists() and not _readable(db):
        log.append(f"{db}: older database layout, importing again")
        db.unlink()
    if not db.exists() or not figures_file.exists():
        log.append(f"importing into {db} ...")
        db.unlink(missing_ok=True)
        read_s, count = baseline_read(zip_path)
        start = time.perf_counter()
        report = import_paths(db, [zip_path], strict=True)
        import_s = time.perf_counter() - start
        figures = {
            "records": float(report.read),
            "import_s": import_s,
            "read_decode_s": read_s,
            "records_per_s": report.read / import_s,
            "read_decode_records_per_s": count / read_s,
        }
        figures_file.write_text(json.dumps(figures))
    return db, json.loads(figures_file.read_text())


def _readable(db: Path) -> bool:
    """Whether this Tidegate reads `db` as it builds it now (a database of an older schema, or
    without the look-up indexes of today's builds, is rebuilt: it would time an older layout)."""
    try:
        VulnStore.open(db).close()
    except VulnDBError:
        return False
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    finally:
        conn.close()
    return {"affected_ecosystem_lookup", "affected_family_lookup"} <= names


def baseline_lookup(db: Path, packages: Sequence[Package]) -> float:
    """One plain indexed SELECT per package (its source name for OS packages)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        start = time.perf_counter()
        for pkg in packages:
            eco = {
                PackageType.DEB: "Debian:12",
                PackageType.PYPI: "PyPI",
                PackageType.NPM: "npm",
                PackageType.GOLANG: "Go",
                PackageType.MAVEN: "Maven",
            }[pkg.type]
            conn.execute(
                "SELECT entry FROM affected WHERE ecosystem = ? AND name = ?",
                (eco, pkg.source_name or pkg.name),
            ).fetchall()
        return time.perf_counter() - start
    finally:
        conn.close()


class ReferenceSource:
    """Only the `AdvisorySource` protocol of a store: the matcher's straightforward path (every
    entry and record decoded, ranges walked with `compare`, alias groups asked per hit)."""

    def __init__(self, store: VulnStore) -> None:
        self._store = store

    def advisories_for(
        self, ecosystem: str, name: str
    ) -> Sequence[tuple[Advisory, AffectedPackage]]:
        return self._store.advisories_for(ecosystem, name)

    def group_id(self, vuln_id: str) -> str | None:
        return self._store.group_id(vuln_id)

    def aliases_of(self, vuln_id: str) -> set[str]:
        return self._store.aliases_of(vuln_id)

    def rating_for_group(self, vuln_id: str) -> Rating | None:
        return self._store.rating_for_group(vuln_id)


def verify(db: Path, scenario: str) -> int:
    """The findings of the fast path, after checking that they are, field for field and in
    the same order, those of the reference path; raises RuntimeError on any difference."""
    result = scan_result(scenario_packages(scenario))
    with VulnStore.open(db) as store:
        fast = match_result(result, store, store.snapshot_id())
    with VulnStore.open(db) as store:
        slow = match_result(result, ReferenceSource(store), store.snapshot_id())
    fast_doc = repr((fast.findings, fast.catalogue.unknowns))
    slow_doc = repr((slow.findings, slow.catalogue.unknowns))
    if fast_doc != slow_doc:
        where = next(
            (
                i
                for i, (a, b) in enumerate(zip(fast.findings, slow.findings, strict=False))
                if a != b
            ),
            min(len(fast.findings), len(slow.findings)),
        )
        raise RuntimeError(
            f"scenario {scenario}: the match differs from the reference path "
            f"({len(fast.findings)} vs {len(slow.findings)} findings, first at {where})"
        )
    return len(fast.findings)


def time_match(db: Path, result: ScanResult, store: VulnStore | None) -> tuple[float, int]:
    """Seconds of one match_result (opening the store included when `store` is None)."""
    start = time.perf_counter()
    own = store or VulnStore.open(db)
    try:
        matched = match_result(result, own, own.snapshot_id())
    finally:
        if store is None:
            own.close()
    return time.perf_counter() - start, len(matched.findings)


def time_match_process(db: Path, scenario: str) -> tuple[float, int]:
    """`time_match` with a fresh store in a fresh interpreter (imports not timed)."""
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child-match",
            str(db),
            "--scenario",
            scenario,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    doc = json.loads(out)
    return float(doc["seconds"]), int(doc["findings"])


def _child_match(db: Path, scenario: str) -> int:
    seconds, findings = time_match(db, scan_result(scenario_packages(scenario)), None)
    print(json.dumps({"seconds": seconds, "findings": findings}))
    return 0


def measure_scenario(db: Path, scenario: str, repeat: int, check: bool = True) -> Scenario:
    if check:
        verify(db, scenario)
    packages = scenario_packages(scenario)
    result = scan_result(packages)
    base, fresh, cold, warm = [], [], [], []
    findings = 0
    with VulnStore.open(db) as warm_store:
        time_match(db, result, warm_store)  # fill the warm store's caches once
        for _ in range(repeat):  # interleaved, so load from other work hits all of them
            base.append(baseline_lookup(db, packages))
            seconds, in_child = time_match_process(db, scenario)
            fresh.append(seconds)
            seconds, findings = time_match(db, result, None)
            if in_child != findings:
                raise RuntimeError(f"fresh process found {in_child} findings, this one {findings}")
            cold.append(seconds)
            warm.append(time_match(db, result, warm_store)[0])
    out = Scenario(scenario, len(packages), findings)
    ms = [
        ("baseline: one SELECT per package", base, ""),
        ("match, fresh process (cold)", fresh, f"< {MATCH_TARGET_MS:.0f} ms"),
        ("match, fresh store, same process", cold, ""),
        ("match, reused store (warm caches)", warm, ""),
    ]
    for name, samples, target in ms:
        values = tuple(s * 1000 for s in samples)
        met = statistics.median(values) < MATCH_TARGET_MS if target else None
        out.figures.append(Figure(name, "ms", statistics.median(values), values, target, met))
    out.ratios = {
        "cold match (process) / baseline": statistics.median(fresh) / statistics.median(base),
        "fresh store match / baseline": statistics.median(cold) / statistics.median(base),
        "warm match / baseline": statistics.median(warm) / statistics.median(base),
    }
    return out


def measure(
    db: Path,
    repeat: int,
    imported: dict[str, float],
    scenarios: Sequence[str] = SCENARIOS,
    check: bool = True,
) -> Result:
    with VulnStore.open(db) as store:
        status = store.status()
    out = Result(status.advisories, status.affected_rows)
    out.scenarios = [measure_scenario(db, name, repeat, check) for name in scenarios]
    out.figures = [
        Figure("import throughput", "rec/s", imported["records_per_s"], ()),
        Figure(
            "baseline: inflate + json.loads", "rec/s", imported["read_decode_records_per_s"], ()
        ),
    ]
    out.ratios = {"import / read+decode (time)": imported["import_s"] / imported["read_decode_s"]}
    return out


def _figure_lines(figures: Sequence[Figure], ratios: dict[str, float]) -> list[str]:
    lines = [f"  {'figure':<36} {'median':>12}  {'target':<9} {'ok':<4} samples"]
    for f in figures:
        ok = "" if f.met is None else ("yes" if f.met else "NO")
        samples = " ".join(f"{s:.1f}" for s in f.samples)
        lines.append(f"  {f.name:<36} {f.median:>9.1f} {f.unit:<5} {f.target:<9} {ok:<4} {samples}")
    lines += [f"  {name:<36} {value:>9.2f}x" for name, value in ratios.items()]
    return lines


def render(result: Result, repeat: int) -> str:
    lines = [
        f"db: {result.advisories} advisories, {result.affected_rows} affected rows; "
        f"median of {repeat}"
    ]
    for sc in result.scenarios:
        per = sc.findings / sc.packages if sc.packages else 0.0
        lines.append(
            f"scenario {sc.name}: {sc.packages} packages -> {sc.findings} findings "
            f"({per:.2f} per package)"
        )
        lines += _figure_lines(sc.figures, sc.ratios)
    lines.append("import")
    lines += _figure_lines(result.figures, result.ratios)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark vulnerability matching.")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--cache-dir", type=Path, help="where the generated DB is kept")
    parser.add_argument("--rebuild", action="store_true", help="regenerate zip and DB")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--scenario", choices=SCENARIOS, action="append", help="only these (default: all)"
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="skip comparing with the reference path"
    )
    parser.add_argument("--child-match", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scenarios = tuple(args.scenario or SCENARIOS)
    if args.child_match:
        return _child_match(args.child_match, scenarios[0])
    log: list[str] = []
    db, imported = prepare(cache_dir(args.cache_dir), args.rebuild, log)
    result = measure(db, max(args.repeat, 1), imported, scenarios, not args.no_verify)
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print("\n".join([*log, render(result, args.repeat)]))
    missed = any(f.met is False for sc in result.scenarios for f in sc.figures)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
