"""Calls always end, against real server processes on 127.0.0.1: ``kill -9`` mid-call, restarts
on the same port between and during calls, and a rolling restart under load with a retry
policy. The server logs every execution to a file (appended before the handler sleeps), so the
tests can count executions across incarnations: that is the evidence of at-most-once."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio

import rpc
from rpc.errors import CallOutcome
from rpc.transport.config import TransportConfig
from tests.examples.harness import STARTUP_TIMEOUT, STOP_TIMEOUT, free_udp_port, generate_service

pytestmark = pytest.mark.realnet

PEER_TIMEOUT = 2.0
CLIENT_CONFIG = TransportConfig(peer_timeout=PEER_TIMEOUT)
#: What the issue promises: a dead server fails its callers within peer_timeout plus this.
DETECTION_SLACK = 1.0
TIMEOUT = 30.0  # a generous bound of the rest: a hang fails the test instead of stalling it

IDL = """\
service Work version 1 {
    /// Log an execution of `id`, sleep `seconds`, return `id`.
    1: i64 run(1: i64 id, 2: f64 seconds);
}
"""

#: ``python work_server.py PORT LOG``: prints "listening on PORT", then serves until a signal.
SERVER = """\
import os
import sys

import trio

import rpc
from work import WorkHandler

PORT, LOG = int(sys.argv[1]), sys.argv[2]
log = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)


class Work(WorkHandler):
    async def run(self, id: int, seconds: float) -> int:
        os.write(log, b"%d\\n" % id)  # in the kernel before the sleep: kill -9 cannot lose it
        await trio.sleep(seconds)
        return id


rpc.run_server(
    [Work()], port=PORT, grace=10.0,
    ready=lambda address: print("listening on", address[1], flush=True),
)
"""


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModuleType]:
    """The directory of the generated stubs and the server script; the stubs module."""
    directory = tmp_path_factory.mktemp("work")
    return directory, generate_service(directory, "work", IDL, SERVER, "process_faults_work")


class Servers:
    """Server processes started in turn on one port, all logging to one file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_udp_port()
        self.log = directory / f"executions-{self.port}.log"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start an incarnation and wait until it listens."""
        assert self.proc is None
        proc = subprocess.Popen(
            [sys.executable, "work_server.py", str(self.port), str(self.log)],
            cwd=self.directory, stdout=subprocess.PIPE, text=True,
        )
        killer = threading.Timer(STARTUP_TIMEOUT, proc.kill)  # a hang fails instead of stalling
        killer.start()
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
        finally:
            killer.cancel()
        assert line == f"listening on {self.port}\n", line
        self.proc = proc

    def kill(self) -> None:
        """``kill -9``: no drain, no CLOSE."""
        assert self.proc is not None
        self.proc.kill()
        self._reap()

    def terminate(self) -> None:
        """SIGTERM: the server drains and closes its sessions, then exits 0."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        assert self._reap() == 0

    def _reap(self) -> int:
        assert self.proc is not None
        proc, self.proc = self.proc, None
        status = proc.wait(timeout=STOP_TIMEOUT)
        assert proc.stdout is not None
        proc.stdout.close()
        return status

    def executions(self) -> collections.Counter[int]:
        """How often each id ran, over every incarnation."""
        if not self.log.exists():
            return collections.Counter()
        return collections.Counter(int(line) for line in self.log.read_text().split())

    def wait_for_execution(self, call_id: int) -> None:
        """Block until ``call_id`` has started (at most TIMEOUT)."""
        for _ in range(int(TIMEOUT / 0.01)):
            if self.executions()[call_id]:
                return
            threading.Event().wait(0.01)
        raise AssertionError(f"call {call_id} never started")


@pytest.fixture
def servers(stubs: tuple[Path, ModuleType]) -> Iterator[Servers]:
    running = Servers(stubs[0])
    running.start()
    try:
        yield running
    finally:
        if running.proc is not None:
            running.kill()


# -- a crash mid-call ------------------------------------------------------------------------


async def test_kill_9_mid_call_fails_an_async_call_without_deadline(
    servers: Servers, stubs: tuple[Path, ModuleType]
) -> None:
    work = stubs[1]
    async with rpc.connect("127.0.0.1", servers.port, config=CLIENT_CONFIG) as client:
        errors: list[rpc.RpcError] = []

        async def call() -> None:
            try:
                await work.WorkClient(client).run(1, 3600.0)  # no timeout at all
            except rpc.RpcError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            with trio.fail_after(TIMEOUT):
                while not servers.executions()[1]:
                    await trio.sleep(0.01)
            await trio.sleep(0.2)  # the CALL is acknowledged, and some probes answered
            servers.kill()
            with trio.fail_after(PEER_TIMEOUT + DETECTION_SLACK):
                while not errors:
                    await trio.sleep(0.01)
    (error,) = errors
    assert isinstance(error, rpc.PeerUnreachable)
    assert error.outcome is CallOutcome.UNKNOWN  # it was delivered and had started
    assert not error.safe_to_retry


def test_kill_9_mid_call_fails_a_sync_call_without_deadline(
    servers: Servers, stubs: tuple[Path, ModuleType]
) -> None:
    work = stubs[1]
    errors: list[BaseException] = []

    def call() -> None:
        with rpc.SyncClient("127.0.0.1", servers.port, config=CLIENT_CONFIG) as client:
            try:
                work.WorkSyncClient(client).run(1, 3600.0)  # no timeout at all
            except rpc.RpcError as exc:
                errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    servers.wait_for_execution(1)
    threading.Event().wait(0.2)
    servers.kill()
    caller.join(PEER_TIMEOUT + DETECTION_SLACK)
    assert not caller.is_alive()
    (error,) = errors
    assert isinstance(error, rpc.PeerUnreachable)
    assert error.outcome is CallOutcome.UNKNOWN


async def test_a_handler_outlasting_peer_timeout_on_a_live_server_succeeds(
    servers: Servers, stubs: tuple[Path, ModuleType]
) -> None:
    work = stubs[1]
    config = TransportConfig(peer_timeout=1.0)
    async with rpc.connect("127.0.0.1", servers.port, config=config) as client:
        with trio.fail_after(TIMEOUT):
            assert await work.WorkClient(client).run(1, 3.0) == 1  # 3x peer_timeout
        assert client.statistics().probes_sent >= 2

    def sync_call() -> tuple[int, int]:
        with rpc.SyncClient("127.0.0.1", servers.port, config=config) as sync:
            result = work.WorkSyncClient(sync).run(2, 3.0)
            return result, sync.statistics().probes_sent

    result, probes = await trio.to_thread.run_sync(sync_call)
    assert result == 2
    assert probes >= 2
    assert servers.executions() == {1: 1, 2: 1}


# -- nothing listening --------------------------------------------------------------------------


async def test_a_port_where_nothing_listens_fails_at_once_undelivered(
    stubs: tuple[Path, ModuleType]
) -> None:
    work = stubs[1]
    port = free_udp_port()  # bound a moment ago, free now: nothing listens there
    async with rpc.connect("127.0.0.1", port) as client:
        with pytest.raises(rpc.PeerUnreachable) as raised:
            await work.WorkClient(client).run(1, 0.0, timeout=TIMEOUT)  # not DeadlineExceeded
    assert raised.value.outcome is CallOutcome.NOT_DELIVERED
    assert raised.value.safe_to_retry

    def sync_call() -> rpc.RpcError:
        with rpc.SyncClient("127.0.0.1", port) as sync:
            try:
                work.WorkSyncClient(sync).run(1, 0.0, timeout=TIMEOUT)
            except rpc.RpcError as exc:
                return exc
        raise AssertionError("the call to nobody succeeded")

    error = await trio.to_thread.run_sync(sync_call)
    assert isinstance(error, rpc.PeerUnreachable)
    assert error.outcome is CallOutcome.NOT_DELIVERED


# -- restarts on the same port ---------------------------------------------------------------


async def test_crash_and_restart_between_calls(
    servers: Servers, stubs: tuple[Path, ModuleType]
) -> None:
    work = stubs[1]
    async with rpc.connect("127.0.0.1", servers.port, config=CLIENT_CONFIG) as client:
        calls = work.WorkClient(client)
        assert await calls.run(1, 0.0, timeout=TIMEOUT) == 1
        servers.kill()
        servers.start()
        with pytest.raises(rpc.RpcError) as raised:
            await calls.run(2, 0.0, timeout=TIMEOUT)  # its one transmission meets the new server
        assert await calls.run(3, 0.0, timeout=TIMEOUT) == 3
    assert isinstance(raised.value, rpc.ServerRestarted)
    assert raised.value.outcome is CallOutcome.NOT_EXECUTED
    assert raised.value.safe_to_retry
    assert servers.executions() == {1: 1, 3: 1}


async def test_graceful_restart_between_calls_costs_no_error(
    servers: Servers, stubs: tuple[Path, ModuleType]
) -> None:
    work = stubs[1]
    async with rpc.connect("127.0.0.1", servers.port, config=CLIENT_CONFIG) as client:
        calls = work.WorkClient(client)
        assert await calls.run(1, 0.0, timeout=TIMEOUT) == 1
        await trio.sleep(0.1)  # the reply's ACK reaches the server: its CLOSE is drained
        await trio.to_thread.run_sync(servers.terminate)  # the client reads the CLOSE meanwhile
        await trio.to_thread.run_sync(servers.start)
        assert await calls.run(2, 0.0, timeout=TIMEOUT) == 2
        assert client.statistics().calls_failed == {}
    assert servers.executions() == {1: 1, 2: 1}


async def test_crash_during_calls_then_restart(
    servers: Servers, stubs: tuple[Path, ModuleType]
) -> None:
    work = stubs[1]
    async with rpc.connect("127.0.0.1", servers.port, config=CLIENT_CONFIG) as client:
        calls = work.WorkClient(client)
        outcomes: dict[int, Any] = {}

        async def call(i: int, seconds: float) -> None:
            try:
                outcomes[i] = await calls.run(i, seconds, timeout=TIMEOUT)
            except rpc.RpcError as exc:
                outcomes[i] = exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, 1, 3600.0)
            with trio.fail_after(TIMEOUT):
                while not servers.executions()[1]:
                    await trio.sleep(0.01)
            servers.kill()
            await call(2, 0.0)  # nothing listens: refused at once, never delivered
            servers.start()
        await call(3, 0.0)
    running, refused = outcomes[1], outcomes[2]
    assert isinstance(running, rpc.PeerUnreachable)
    assert running.outcome is CallOutcome.UNKNOWN  # it had started: it may have run
    assert isinstance(refused, rpc.PeerUnreachable)
    assert refused.outcome is CallOutcome.NOT_DELIVERED
    assert refused.safe_to_retry
    assert outcomes[3] == 3
    assert servers.executions() == {1: 1, 3: 1}


async def test_rolling_restarts_under_load_fail_no_call_and_run_none_twice(
    servers: Servers, stubs: tuple[Path, ModuleType]
) -> None:
    work = stubs[1]
    retry = rpc.RetryPolicy(attempts=20, initial_backoff=0.05, max_backoff=0.5)
    ids = iter(range(1, 100_000))
    returned: list[int] = []
    failures: list[rpc.RpcError] = []
    async with rpc.connect("127.0.0.1", servers.port, config=CLIENT_CONFIG, retry=retry) as client:
        calls = work.WorkClient(client)
        stop = trio.Event()

        async def worker() -> None:
            while not stop.is_set():
                call_id = next(ids)
                try:
                    returned.append(await calls.run(call_id, 0.01, timeout=TIMEOUT))
                except rpc.RpcError as exc:
                    failures.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(32):
                nursery.start_soon(worker)
            for _ in range(3):
                await trio.sleep(0.5)
                await trio.to_thread.run_sync(servers.terminate)
                await trio.to_thread.run_sync(servers.start)
            await trio.sleep(0.5)
            stop.set()
        retries = client.statistics().retries
    assert failures == [], [(e, e.outcome) for e in failures[:5]]
    executions = servers.executions()
    assert all(count == 1 for count in executions.values())  # none ran twice
    assert set(returned) == set(executions)  # every returned call ran, once
    assert len(returned) > 3 * 32
    assert retries > 0  # the restarts were felt, and absorbed
