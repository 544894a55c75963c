"""The chaos proxy over real UDP on 127.0.0.1: faults happen, are counted, and are bounded."""

from __future__ import annotations

import threading

import pytest
import trio
import trio.testing

from rpc.drivers._trio import TrioUdpSocket, open_udp_socket
from rpc.testing import LinkFaults
from rpc.testing.chaos_proxy import ChaosProxy, ProxyStatistics, faults_from_args, main

COUNT = 300


async def echo(sock: TrioUdpSocket, seen: list[bytes]) -> None:
    while True:
        data, addr = await sock.recvfrom(65536)
        seen.append(data)
        await sock.sendto(data, addr)


async def exchange(
    proxy: ChaosProxy, client: TrioUdpSocket, server_seen: list[bytes], expected: int = 0
) -> list[bytes]:
    """Send COUNT datagrams through the proxy; return the echoes once everything has settled.

    Settled means every task is blocked with nothing left to read (loopback delivers during
    ``sendto``), after at least ``expected`` echoes came back (delayed ones take real time).
    """
    got: list[bytes] = []
    enough = trio.Event()

    async def collect() -> None:
        while True:
            got.append((await client.recvfrom(65536))[0])
            if len(got) >= expected:
                enough.set()

    def settled(stats: ProxyStatistics) -> bool:
        return (
            stats.to_server.sent == COUNT
            and len(server_seen) == stats.to_server.delivered == stats.to_client.sent
            and len(got) == stats.to_client.delivered
        )

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect)
            for i in range(COUNT):  # 300 small datagrams fit the 4 MiB socket buffers
                await client.sendto(i.to_bytes(4, "big") + bytes(60), proxy.address)
            if expected:
                await enough.wait()
            await trio.testing.wait_all_tasks_blocked()
            assert settled(proxy.statistics()), proxy.statistics()
            nursery.cancel_scope.cancel()
    return got


@pytest.mark.realnet
async def test_faults_happen_and_are_counted() -> None:
    server, client = await open_udp_socket(), await open_udp_socket()
    server_seen: list[bytes] = []
    faults = LinkFaults(loss=0.2, duplicate=0.1, corrupt=0.1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo, server, server_seen)
        async with ChaosProxy(server.getsockname(), faults, faults, seed=5) as proxy:
            got = await exchange(proxy, client, server_seen)
            stats = proxy.statistics()
        nursery.cancel_scope.cancel()
    server.close()
    client.close()
    up, down = stats.to_server, stats.to_client
    assert stats.clients == 1
    assert 0.1 * COUNT < up.dropped_loss < 0.3 * COUNT
    assert up.duplicated > 0
    assert down.duplicated > 0
    assert up.corrupted > 0
    assert down.corrupted > 0
    assert up.delivered == COUNT - up.dropped_loss + up.duplicated
    intact = sum(1 for d in got if d[4:] == bytes(60))
    assert intact < len(got)  # corrupted echoes really reached the client


@pytest.mark.realnet
async def test_clean_proxy_forwards_everything_and_delays() -> None:
    server, client = await open_udp_socket(), await open_udp_socket()
    server_seen: list[bytes] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo, server, server_seen)
        async with ChaosProxy(server.getsockname(), LinkFaults(delay=0.002), seed=1) as proxy:
            got = await exchange(proxy, client, server_seen, expected=COUNT)
            stats = proxy.statistics()
        nursery.cancel_scope.cancel()
    server.close()
    client.close()
    assert sorted(got) == sorted(server_seen)
    assert len(got) == COUNT
    assert stats.to_server.delayed == COUNT
    assert stats.to_client.delayed == 0


@pytest.mark.realnet
async def test_client_table_is_bounded() -> None:
    server = await open_udp_socket()
    clients = [await open_udp_socket() for _ in range(5)]
    async with ChaosProxy(server.getsockname(), max_clients=3) as proxy:
        for client in clients:
            await client.sendto(b"hello", proxy.address)
        await trio.testing.wait_all_tasks_blocked()
        stats = proxy.statistics()
    assert (stats.clients, stats.clients_evicted) == (3, 2)
    for sock in (server, *clients):
        sock.close()


def test_command_line_runs_for_its_duration(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--target", "127.0.0.1:9", "--loss", "0.1", "--dup", "0.05", "--duration", "0"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "rpc-chaos-proxy: 127.0.0.1:" in out
    assert "to server: nothing" in out


def test_command_line_faults_and_directions() -> None:
    from rpc.testing.chaos_proxy import _parser

    args = _parser().parse_args(
        ["--target", "127.0.0.1:9000", "--loss", "0.1", "--burst", "3", "--direction", "to-client"]
    )
    to_server, to_client = faults_from_args(args)
    assert to_server == LinkFaults()
    assert (to_client.loss, to_client.burst_max) == (0.1, 3)
    with pytest.raises(SystemExit):
        main(["--target", "127.0.0.1:9000", "--loss", "2"])
    with pytest.raises(SystemExit):
        main(["--target", "nonsense"])


def test_the_proxy_thread_serves_blocking_code_and_changes_faults_from_outside() -> None:
    import socket as stdlib_socket

    from rpc.testing import ChaosProxyThread

    echo = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    echo.settimeout(5.0)
    client = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    client.settimeout(5.0)
    with echo, client, ChaosProxyThread(echo.getsockname()) as proxy:
        client.sendto(b"through", proxy.address)
        data, _ = echo.recvfrom(100)
        assert data == b"through"
        proxy.set_faults(to_server=LinkFaults(loss=1.0))
        client.sendto(b"lost", proxy.address)
        client.sendto(b"lost", proxy.address)
        for _ in range(500):  # the proxy thread counts both drops
            if proxy.statistics().to_server.dropped_loss == 2:
                break
            threading.Event().wait(0.01)
    stats = proxy.statistics()  # readable after the thread stopped
    assert stats.to_server.delivered == 1
    assert stats.to_server.dropped_loss == 2
