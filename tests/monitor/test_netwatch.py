"""`enforcer.netwatch`: socket tables as the kernel writes them (IPv4, IPv6, v4-mapped, every
state that matters, hostile lines) into listeners and outbound connections, and the snapshot of a
real podman container with a listener and a connection to it (busybox's nc has no UDP: UDP is
covered by the table vectors)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from monitor_support import Podman

from tidegate.enforcer.monitor import WatchedContainer
from tidegate.enforcer.netwatch import (
    Connection,
    Listener,
    NetSnapshot,
    NetWatchError,
    Protocol,
    parse_address,
    parse_table,
    snapshot,
    snapshot_from_tables,
)

TCP, UDP = Protocol.TCP, Protocol.UDP
HEADER4 = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout"
    " inode"
)
HEADER6 = (
    "  sl  local_address                         remote_address                        st"
    " tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
)


def line4(n: int, local: str, remote: str, state: str) -> str:
    """One line of /proc/net/tcp or udp, spaced as the kernel's seq_printf spaces it."""
    return (
        f"{n:4d}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000     0        0"
        f" {12000 + n} 1 0000000000000000 100 0 0 10 0"
    )


def line6(n: int, local: str, remote: str, state: str) -> str:
    return (
        f"{n:4d}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000     0        0"
        f" {13000 + n} 1 0000000000000000 100 0 0 10 0"
    )


ANY6 = "0" * 32
LOOP6 = "00000000000000000000000001000000"
DOC6 = "B80D0120000000000000000001000000"  # 2001:db8::1
MAPPED = "0000000000000000FFFF00000100000A"  # ::ffff:10.0.0.1


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("0100007F", "127.0.0.1"),
        ("00000000", "0.0.0.0"),
        ("0F02000A", "10.0.2.15"),
        ("22D8B85D", "93.184.216.34"),
        ("22d8b85d", "93.184.216.34"),
        (ANY6, "::"),
        (LOOP6, "::1"),
        (DOC6, "2001:db8::1"),
        (MAPPED, "10.0.0.1"),
        ("000080FE00000000FFFF03025A1C1AFE", "fe80::203:ffff:fe1a:1c5a"),
    ],
)
def test_addresses_as_the_kernel_prints_them(text: str, address: str) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["", "0100007", "0100007G", "0" * 16, "0" * 33, "zz" * 4])
def test_bad_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="hex digits"):
        parse_address(text)


@pytest.mark.parametrize(
    ("tables", "listeners", "outbound"),
    [
        pytest.param(
            {"tcp": "\n".join([HEADER4, line4(0, "00000000:1F90", "00000000:0000", "0A")])},
            [Listener(TCP, "0.0.0.0", 8080)],
            [],
            id="tcp-listener",
        ),
        pytest.param(
            {
                "tcp": "\n".join(
                    [
                        HEADER4,
                        line4(0, "0F02000A:ABE0", "22D8B85D:01BB", "01"),  # established
                        line4(1, "0F02000A:ABE2", "22D8B85D:0050", "02"),  # syn-sent
                        line4(2, "0F02000A:ABE4", "22D8B85D:0051", "06"),  # time-wait: gone
                        line4(3, "0F02000A:ABE6", "22D8B85D:0052", "08"),  # close-wait: not counted
                    ]
                )
            },
            [],
            [Connection(TCP, "93.184.216.34", 80), Connection(TCP, "93.184.216.34", 443)],
            id="tcp-outbound-states",
        ),
        pytest.param(
            {
                "tcp": "\n".join(
                    [
                        HEADER4,
                        line4(0, "0100007F:1F90", "00000000:0000", "0A"),
                        line4(1, "0100007F:1F90", "0100007F:C350", "01"),  # accepted: inbound
                        line4(2, "0100007F:C350", "0100007F:1F90", "01"),  # the client: outbound
                    ]
                )
            },
            [Listener(TCP, "127.0.0.1", 8080)],
            [Connection(TCP, "127.0.0.1", 8080)],
            id="loopback-connection-to-own-listener",
        ),
        pytest.param(
            {
                "tcp6": "\n".join(
                    [
                        HEADER6,
                        line6(0, f"{ANY6}:0016", f"{ANY6}:0000", "0A"),
                        line6(1, f"{LOOP6}:A000", f"{DOC6}:01BB", "01"),
                        line6(2, f"{MAPPED}:A002", f"{MAPPED}:1538", "02"),
                        line6(3, f"{ANY6}:0016", f"{DOC6}:D431", "01"),  # accepted on :22
                    ]
                )
            },
            [Listener(TCP, "::", 22)],
            [Connection(TCP, "10.0.0.1", 5432), Connection(TCP, "2001:db8::1", 443)],
            id="tcp6-and-v4-mapped",
        ),
        pytest.param(
            {
                "udp": "\n".join(
                    [
                        HEADER4 + " ref pointer drops",
                        line4(0, "00000000:14E9", "00000000:0000", "07"),  # bound: listens
                        line4(1, "0F02000A:9C40", "3500000A:0035", "01"),  # connected: DNS
                        line4(2, "00000000:0000", "00000000:0000", "07"),  # unbound: nothing
                    ]
                ),
                "udp6": "\n".join([HEADER6, line6(0, f"{LOOP6}:0202", f"{ANY6}:0000", "07")]),
            },
            [Listener(UDP, "0.0.0.0", 5353), Listener(UDP, "::1", 514)],
            [Connection(UDP, "10.0.0.53", 53)],
            id="udp",
        ),
        pytest.param(
            {
                "tcp": "\n".join(
                    [
                        HEADER4,
                        line4(0, "00000000:1F90", "00000000:0000", "0A"),
                        line4(1, "00000000:1F90", "00000000:0000", "0A"),  # SO_REUSEPORT twin
                        line4(2, "0F02000A:ABE0", "22D8B85D:01BB", "01"),
                        line4(3, "0F02000A:ABE1", "22D8B85D:01BB", "01"),  # same endpoint
                    ]
                )
            },
            [Listener(TCP, "0.0.0.0", 8080)],
            [Connection(TCP, "93.184.216.34", 443)],
            id="deduplicated",
        ),
        pytest.param(
            {
                "tcp": "\n".join(
                    [
                        HEADER4,
                        line4(0, "0100007F:1F91", "0100007F:959E", "01"),  # listener gone: accepted
                        line4(1, "0100007F:959E", "0100007F:1F91", "01"),  # the client
                        line4(
                            2, "0F02000A:0016", "0102000A:0050", "01"
                        ),  # fixed to fixed: outbound
                    ]
                )
            },
            [],
            [Connection(TCP, "10.0.2.1", 80), Connection(TCP, "127.0.0.1", 8081)],
            id="accepted-after-the-listener-closed",
        ),
        pytest.param({"tcp": "", "tcp6": HEADER6, "raw": "junk"}, [], [], id="empty"),
    ],
)
def test_tables(
    tables: dict[str, str], listeners: list[Listener], outbound: list[Connection]
) -> None:
    found = snapshot_from_tables(tables)
    assert list(found.listeners) == listeners
    assert list(found.outbound) == outbound
    assert found.skipped == 0


@pytest.mark.parametrize(
    "bad",
    [
        "   1: 0100007F:1F90",  # truncated
        "   1: 0100007F1F90 00000000:0000 0A",  # no port separator
        "   1: 0100007F:1F90 00000000:0000 XZ 0",  # state not hex
        "   1: 0100007F:1F90 00000000:0000 A 0",  # state not two digits
        "   1: 0100007:1F90 00000000:0000 0A 0",  # seven hex digits
        "   1: 0100007F:12345 00000000:0000 0A 0",  # port of five digits
        "   1: 0100007F:-1 00000000:0000 0A 0",
        "1 0100007F:1F90 00000000:0000 0A",  # no "N:" slot
        "\x00\xff\x01 garbage \u202e",
        "sl local_address",  # a header where no header belongs
    ],
)
def test_hostile_lines_are_skipped_and_counted(bad: str) -> None:
    good = line4(0, "00000000:1F90", "00000000:0000", "0A")
    text = "\n".join([HEADER4, good, bad, good.replace("1F90", "1F91")])
    entries, skipped = parse_table(text, TCP)
    assert skipped == 1
    assert [e.local_port for e in entries] == [8080, 8081]


def test_snapshot_of_a_proc_tree(tmp_path: Path) -> None:
    net = tmp_path / "42" / "net"
    net.mkdir(parents=True)
    (net / "tcp").write_text(
        "\n".join([HEADER4, line4(0, "00000000:1F90", "00000000:0000", "0A"), "junk line"]) + "\n"
    )
    found = snapshot(42, proc=tmp_path)
    assert found.listeners == (Listener(TCP, "0.0.0.0", 8080),)
    assert found.skipped == 1
    assert len(found.notes) == 3  # tcp6, udp, udp6 missing
    with pytest.raises(NetWatchError, match="pid 43"):
        snapshot(43, proc=tmp_path)


# -- a real container -------------------------------------------------------------------------

SERVE = (  # nc -l closes its listener when it accepts: 8081 is the one connected to
    "sleep 3600 | busybox nc -l -p 8080 & "
    "sleep 3600 | busybox nc -l -p 8081 & "
    "sleep 1; sleep 3600 | busybox nc 127.0.0.1 8081 & "
    "exec sleep 3600"
)


@pytest.fixture
def serving(podman: Podman) -> Iterator[WatchedContainer]:
    watched = podman.start(command=("-c", SERVE), options=("--entrypoint", "/bin/sh"))
    yield watched
    podman.remove(watched)


def _wait(pid: int, predicate: object, timeout: float = 15) -> NetSnapshot:
    deadline = time.monotonic() + timeout
    while True:
        found = snapshot(pid)
        if predicate(found) or time.monotonic() > deadline:  # type: ignore[operator]
            return found
        time.sleep(0.2)


@pytest.mark.system
def test_snapshot_of_a_podman_container(serving: WatchedContainer) -> None:
    assert serving.pid is not None
    found = _wait(serving.pid, lambda s: s.outbound and s.listeners)
    assert (
        Listener(TCP, "0.0.0.0", 8080) in found.listeners
        or Listener(TCP, "::", 8080) in found.listeners
    )
    assert {(item.protocol, item.port) for item in found.listeners} == {(TCP, 8080)}
    assert found.outbound == (Connection(TCP, "127.0.0.1", 8081),)
    assert found.skipped == 0
