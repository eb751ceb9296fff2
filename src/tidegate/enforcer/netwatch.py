"""What a container does on the network, from its process's socket tables (/proc/PID/net).

Owns: parsing /proc/PID/net/{tcp,tcp6,udp,udp6} (the tables of the process's network namespace,
so a container's own sockets) into `NetSnapshot`: the listeners (protocol, local address, port)
and the outbound connections (protocol, remote address, remote port). Image profiling records
these while an image's tests run.

The kernel writes one socket per line after a header:

    sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
     0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0    0    12345 ...

An address is the raw `struct in_addr` / `struct in6_addr` printed as 32-bit words in host byte
order (little-endian here: 0100007F is 127.0.0.1; IPv6 as four such words), the port is plain hex.
A TCP listener is state 0A (LISTEN); an outbound TCP connection is ESTABLISHED (01) or SYN_SENT
(02) from a local port that is not one of the listening ports (those are connections accepted by
a listener, i.e. inbound). A server may close its listener and keep the accepted connection
(busybox `nc -l` serves one): a connection from a fixed port to a port of the ephemeral range
(the kernel's default 32768-60999, where clients' ports come from) is taken as accepted, too.
UDP has no handshake: a socket bound to a port and not connected (state 07, no remote) listens;
a connected one (01) with a remote port sends to it.

The tables are read as hostile input (another process's namespace): a line that does not parse is
skipped and counted, never an error; only a process whose tables cannot be read at all is.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tidegate.enforcer.errors import EnforcerError

__all__ = [
    "TABLES",
    "Connection",
    "Listener",
    "NetSnapshot",
    "NetWatchError",
    "Protocol",
    "SocketEntry",
    "parse_address",
    "parse_table",
    "snapshot",
    "snapshot_from_entries",
    "snapshot_from_tables",
]

MAX_TABLE = 8 * 1024 * 1024
"""The most of one table read (a busy namespace has a few thousand sockets: ~150 bytes each)."""

_TCP_ESTABLISHED = 0x01
_TCP_SYN_SENT = 0x02
_TCP_CLOSE = 0x07
_TCP_LISTEN = 0x0A
EPHEMERAL_PORTS = (32768, 60999)
"""Linux's default net.ipv4.ip_local_port_range: the ports clients connect from."""


class NetWatchError(EnforcerError):
    """A process's socket tables cannot be read (it exited, or /proc is not there)."""


class Protocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"


TABLES: Mapping[str, Protocol] = {
    "tcp": Protocol.TCP,
    "tcp6": Protocol.TCP,
    "udp": Protocol.UDP,
    "udp6": Protocol.UDP,
}
"""The tables read under /proc/PID/net, and the protocol of each."""


@dataclass(frozen=True, slots=True, order=True)
class Listener:
    protocol: Protocol
    address: str
    """The local address ("0.0.0.0" and "::" listen on every address)."""
    port: int


@dataclass(frozen=True, slots=True, order=True)
class Connection:
    protocol: Protocol
    remote_address: str
    remote_port: int


@dataclass(frozen=True, slots=True)
class SocketEntry:
    """One line of a socket table."""

    protocol: Protocol
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    state: int


@dataclass(frozen=True, slots=True)
class NetSnapshot:
    """A network namespace's listeners and outbound connections at one moment."""

    listeners: tuple[Listener, ...] = ()
    outbound: tuple[Connection, ...] = ()
    skipped: int = 0
    """Lines that did not parse."""
    notes: tuple[str, ...] = ()
    """What could not be read (a table this kernel lacks...)."""


def _is_hex(text: str) -> bool:
    # int(x, 16) also takes signs, underscores and spaces: the kernel writes none of them.
    return all(c in "0123456789abcdefABCDEF" for c in text)


def parse_address(text: str) -> str:
    """The address of a table's hex field ("0100007F" -> "127.0.0.1"); ValueError when it is
    not 8 or 32 hex digits. An IPv4-mapped IPv6 address is given as its IPv4 address."""
    if len(text) not in (8, 32) or not _is_hex(text):
        raise ValueError(f"address {text[:40]!r} is not 8 or 32 hex digits")
    raw = bytes.fromhex(text)
    # Each 32-bit word was printed as a host-order integer: undo that per word.
    words = (raw[i : i + 4] for i in range(0, len(raw), 4))
    packed = b"".join(int.from_bytes(w, "big").to_bytes(4, sys.byteorder) for w in words)
    if len(packed) == 4:
        return str(ipaddress.IPv4Address(packed))
    address = ipaddress.IPv6Address(packed)
    mapped = address.ipv4_mapped
    return str(mapped) if mapped is not None else str(address)


def _endpoint(text: str) -> tuple[str, int]:
    address, sep, port = text.partition(":")
    if not sep or not 1 <= len(port) <= 4 or not _is_hex(port):
        raise ValueError(f"endpoint {text[:60]!r} is not ADDRESS:PORT")
    return parse_address(address), int(port, 16)


def parse_table(text: str, protocol: Protocol) -> tuple[list[SocketEntry], int]:
    """The sockets of one table (header line skipped) and how many lines did not parse."""
    entries: list[SocketEntry] = []
    skipped = 0
    for number, line in enumerate(text.splitlines()):
        fields = line.split()
        if not fields or (number == 0 and fields[0] == "sl"):
            continue
        try:
            if len(fields) < 4 or not fields[0].endswith(":"):
                raise ValueError("too few fields")
            local, local_port = _endpoint(fields[1])
            remote, remote_port = _endpoint(fields[2])
            if len(fields[3]) != 2 or not _is_hex(fields[3]):
                raise ValueError("state is not two hex digits")
            state = int(fields[3], 16)
        except ValueError:
            skipped += 1
            continue
        entries.append(SocketEntry(protocol, local, local_port, remote, remote_port, state))
    return entries, skipped


def _listens(entry: SocketEntry) -> bool:
    if entry.protocol is Protocol.TCP:
        return entry.state == _TCP_LISTEN
    return entry.state == _TCP_CLOSE and entry.local_port != 0 and entry.remote_port == 0


def _sends(entry: SocketEntry) -> bool:
    if entry.remote_port == 0:
        return False
    if entry.protocol is Protocol.TCP:
        return entry.state in (_TCP_ESTABLISHED, _TCP_SYN_SENT)
    return entry.state == _TCP_ESTABLISHED


def _accepted(entry: SocketEntry, ephemeral: tuple[int, int]) -> bool:
    low, high = ephemeral
    return low <= entry.remote_port <= high and not low <= entry.local_port <= high


def snapshot_from_entries(
    entries: Iterable[SocketEntry],
    *,
    skipped: int = 0,
    notes: tuple[str, ...] = (),
    ephemeral: tuple[int, int] = EPHEMERAL_PORTS,
) -> NetSnapshot:
    """Listeners and outbound connections of a namespace's sockets (deduplicated, sorted)."""
    entries = list(entries)
    listeners = {
        Listener(e.protocol, e.local_address, e.local_port) for e in entries if _listens(e)
    }
    listening = {(item.protocol, item.port) for item in listeners}
    outbound = {
        Connection(e.protocol, e.remote_address, e.remote_port)
        for e in entries
        if _sends(e)
        and (e.protocol, e.local_port) not in listening  # accepted by a listener: inbound
        and not (e.protocol is Protocol.TCP and _accepted(e, ephemeral))
    }
    return NetSnapshot(
        listeners=tuple(sorted(listeners)),
        outbound=tuple(sorted(outbound)),
        skipped=skipped,
        notes=notes,
    )


def snapshot_from_tables(tables: Mapping[str, str]) -> NetSnapshot:
    """The snapshot of table texts by table name ("tcp", "udp6"...; others are ignored)."""
    entries: list[SocketEntry] = []
    skipped = 0
    for name, text in tables.items():
        protocol = TABLES.get(name)
        if protocol is None:
            continue
        found, bad = parse_table(text, protocol)
        entries += found
        skipped += bad
    return snapshot_from_entries(entries, skipped=skipped)


def snapshot(pid: int, proc: Path = Path("/proc")) -> NetSnapshot:
    """The listeners and outbound connections of `pid`'s network namespace; NetWatchError when
    none of its tables can be read (the process is gone)."""
    base = proc / str(pid) / "net"
    texts: dict[str, str] = {}
    notes: list[str] = []
    for name in TABLES:
        try:
            with (base / name).open("rb") as handle:
                texts[name] = handle.read(MAX_TABLE).decode("ascii", "replace")
        except FileNotFoundError:
            notes.append(f"{base / name}: not present (no such protocol in this kernel)")
        except OSError as exc:
            notes.append(f"{base / name}: {exc.strerror or exc}")
    if not texts:
        raise NetWatchError(
            f"pid {pid}: no socket table readable under {base} ({'; '.join(notes)})"
        )
    found = snapshot_from_tables(texts)
    return NetSnapshot(
        listeners=found.listeners,
        outbound=found.outbound,
        skipped=found.skipped,
        notes=tuple(notes),
    )
