"""Serving until a signal: SIGTERM or Ctrl-C drains running calls, a second signal stops at once.

The process tests run ``rpc.run_server`` in a server process on 127.0.0.1 and signal it while a
call runs. Its handler ``hold`` holds until the test creates a release file (or is cancelled),
so the drain lasts exactly as long as each test needs: no test depends on how fast the machine
is. The in-process tests signal the test process itself (``os.kill``) while
``serve_until_signal`` has trio's signal receiver installed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio

import rpc
from rpc.errors import CallOutcome
from tests.examples.harness import STOP_TIMEOUT, _first_line, generate_service
from tests.runtime.harness import LabImpl
from tests.runtime.lab_service import LabClient

pytestmark = pytest.mark.realnet

#: Generous bound of every call and wait: a hang fails the test instead of stalling it.
TIMEOUT = 30.0

IDL = """\
service Holder version 1 {
    /// Hold until the release file exists, then return `token`.
    1: i64 hold(1: i64 token);
    /// Return `token` at once.
    2: i64 echo(1: i64 token);
}
"""

#: ``python holder_server.py GRACE RELEASE_FILE``: prints "listening on PORT", then serves.
SERVER = """\
import logging
import sys
from pathlib import Path

import trio

import rpc
from holder import HolderHandler

GRACE, RELEASE = float(sys.argv[1]), Path(sys.argv[2])


class Holder(HolderHandler):
    async def hold(self, token: int) -> int:
        print("holding", flush=True)
        try:
            with trio.move_on_after(60.0):  # longer than any test waits for the process
                while not RELEASE.exists():
                    await trio.sleep(0.01)
                return token
        except trio.Cancelled:
            print("hold cancelled", flush=True)
            raise
        return -token

    async def echo(self, token: int) -> int:
        return token


logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
rpc.run_server(
    [Holder()], grace=GRACE, ready=lambda address: print("listening on", address[1], flush=True)
)
print("stopped", flush=True)
"""


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModuleType]:
    """The directory holding the generated stubs and the server script; the stubs module."""
    directory = tmp_path_factory.mktemp("holder")
    return directory, generate_service(directory, "holder", IDL, SERVER, "signal_test_holder")


class ServerProcess:
    """A ``holder_server.py`` process and its port; ``release`` lets its held calls return."""

    def __init__(self, proc: subprocess.Popen[str], port: int, release: Path) -> None:
        self.proc = proc
        self.port = port
        self.release = release

    async def next_line(self) -> str:
        """The process's next line of output (\"\" if none comes within STARTUP_TIMEOUT)."""
        return await trio.to_thread.run_sync(_first_line, self.proc)

    async def exit(self, within: float) -> tuple[int, str, str]:
        """Wait for the process to exit by itself: (status, rest of stdout, stderr)."""
        out, err = await trio.to_thread.run_sync(
            lambda: self.proc.communicate(timeout=within)  # TimeoutExpired fails the test
        )
        return self.proc.returncode, out, err


@contextlib.contextmanager
def holder_server(stubs: tuple[Path, ModuleType], tmp_path: Path, grace: float
                  ) -> Iterator[ServerProcess]:
    """Start ``holder_server.py`` with ``grace``; kill it on the way out if still running."""
    release = tmp_path / "release"
    proc = subprocess.Popen(
        [sys.executable, str(stubs[0] / "holder_server.py"), repr(grace), str(release)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = _first_line(proc)
        found = re.fullmatch(r"listening on (\d+)\n", line)
        assert found is not None, f"the server did not announce its port: {line!r}"
        yield ServerProcess(proc, int(found.group(1)), release)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=STOP_TIMEOUT)


async def refused(client: Any) -> rpc.ShuttingDown:
    """Make quick calls until the server refuses one (it has begun to drain)."""
    with trio.fail_after(TIMEOUT):
        while True:
            try:
                assert await client.echo(7, timeout=TIMEOUT) == 7  # not draining yet
            except rpc.ShuttingDown as exc:
                return exc
            await trio.sleep(0.01)


async def hold(client: Any, outcome: list[object]) -> None:
    try:
        outcome.append(await client.hold(42, timeout=TIMEOUT))
    except rpc.RpcError as exc:
        outcome.append(exc)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_lets_the_running_call_finish_then_the_process_exits(
    stubs: tuple[Path, ModuleType], tmp_path: Path, signum: signal.Signals
) -> None:
    grace = 20.0
    with holder_server(stubs, tmp_path, grace) as server:
        async with rpc.connect("127.0.0.1", server.port) as connection:
            client = stubs[1].HolderClient(connection)
            outcome: list[object] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(hold, client, outcome)
                assert await server.next_line() == "holding\n"
                server.proc.send_signal(signum)
                refusal = await refused(client)  # new calls are refused during the drain...
                assert refusal.outcome is CallOutcome.NOT_EXECUTED
                assert server.proc.poll() is None  # ...while the held call still runs
                server.release.touch()
            assert outcome == [42]  # the running call finished with its result
            status, out, err = await server.exit(within=grace + STOP_TIMEOUT)
            # Once the server is gone a call fails cleanly within its deadline, known unrun.
            with trio.fail_after(TIMEOUT), pytest.raises(rpc.RpcError) as caught:
                await client.echo(1, timeout=2.0)
            assert caught.value.outcome.safe_to_retry
    assert status == 0, err
    assert out == "stopped\n"
    assert f"{signum.name} received: shutting down within 20.0 s" in err
    assert "Traceback" not in err


async def test_a_second_signal_cancels_the_running_call_and_stops_at_once(
    stubs: tuple[Path, ModuleType], tmp_path: Path
) -> None:
    grace = 60.0  # longer than the test waits for the process: only the second signal ends it
    with holder_server(stubs, tmp_path, grace) as server:
        async with rpc.connect("127.0.0.1", server.port) as connection:
            client = stubs[1].HolderClient(connection)
            outcome: list[object] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(hold, client, outcome)
                assert await server.next_line() == "holding\n"
                server.proc.send_signal(signal.SIGTERM)
                await refused(client)  # the first signal has been received
                server.proc.send_signal(signal.SIGINT)
                status, out, err = await server.exit(within=STOP_TIMEOUT)
    assert status == 0, err
    assert out == "hold cancelled\nstopped\n"
    assert "SIGINT received again: stopping at once" in err
    assert "Traceback" not in err
    assert len(outcome) == 1
    assert isinstance(outcome[0], rpc.RpcError)  # no reply: the handler never returned
    assert outcome[0].outcome is not CallOutcome.EXECUTED


async def test_a_handler_outlasting_grace_is_cancelled_and_the_process_exits(
    stubs: tuple[Path, ModuleType], tmp_path: Path
) -> None:
    grace = 0.5
    with holder_server(stubs, tmp_path, grace) as server:
        async with rpc.connect("127.0.0.1", server.port) as connection:
            client = stubs[1].HolderClient(connection)
            outcome: list[object] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(hold, client, outcome)
                assert await server.next_line() == "holding\n"
                server.proc.send_signal(signal.SIGTERM)  # and the call is never released
                status, out, err = await server.exit(within=grace + STOP_TIMEOUT)
    assert status == 0, err
    assert out == "hold cancelled\nstopped\n"
    assert "cancelling 1 calls still running after 0.5 s" in err
    assert len(outcome) == 1
    assert isinstance(outcome[0], rpc.RpcError)
    assert outcome[0].outcome is not CallOutcome.EXECUTED


# -- in process: the test sends the signal to itself ----------------------------------------


def kill_myself() -> None:
    """SIGTERM to this process: only while serve_until_signal's receiver is installed."""
    os.kill(os.getpid(), signal.SIGTERM)


async def test_serve_until_signal_drains_the_running_call_in_process() -> None:
    impl = LabImpl()
    server = rpc.Server([impl])
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(server.serve_until_signal)  # starts serving
            async with rpc.connect(*address) as client, trio.open_nursery() as calls:
                lab = LabClient(client)
                assert await lab.bump("n", timeout=TIMEOUT) == 1
                calls.start_soon(lab.sleep, 1.0)
                await impl.sleep_started.wait()
                kill_myself()
                refusal = await refused(EchoByBump(lab))
                assert refusal.outcome is CallOutcome.NOT_EXECUTED
        # The nursery is done, so serve_until_signal returned: after the sleep finished.
    assert impl.sleep_finished == 1
    assert impl.sleep_cancelled == 0
    with pytest.raises(rpc.RpcError, match="stopped already"):
        await server.serve_until_signal()


async def test_serve_until_signal_inside_async_with() -> None:
    with trio.fail_after(TIMEOUT):
        async with rpc.Server([LabImpl()]) as server:
            async with trio.open_nursery() as nursery:
                address = await nursery.start(server.serve_until_signal)
                assert address == server.address  # the server already served: same socket
                kill_myself()
            async with rpc.connect(*address) as client:  # the server is gone
                with pytest.raises(rpc.RpcError) as caught:
                    await LabClient(client).bump("n", timeout=1.0)
    assert caught.value.outcome is not CallOutcome.EXECUTED


async def test_serve_until_signal_returns_when_another_task_shuts_the_server_down() -> None:
    server = rpc.Server([LabImpl()])
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_until_signal)
            await server.shutdown()


async def test_serve_until_signal_checks_its_arguments() -> None:
    server = rpc.Server([LabImpl()])
    with pytest.raises(rpc.InvalidArgument, match="grace"):
        await server.serve_until_signal(grace=-1.0)
    with pytest.raises(rpc.InvalidArgument, match="signal"):
        await server.serve_until_signal(signals=())


def test_run_server_serves_until_a_signal() -> None:
    addresses: list[tuple[str, int]] = []

    def ready(address: tuple[str, int]) -> None:
        addresses.append(address)
        kill_myself()  # trio delivers it to run_server's receiver

    rpc.run_server([LabImpl()], ready=ready, grace=1.0, max_concurrent=4)
    assert len(addresses) == 1
    assert addresses[0][0] == "127.0.0.1"


class EchoByBump:
    """``refused`` for the Lab service: ``echo`` is a ``bump`` of a key nobody reads."""

    def __init__(self, lab: LabClient) -> None:
        self.lab = lab

    async def echo(self, token: int, *, timeout: float) -> int:
        await self.lab.bump("probe", timeout=timeout)
        return token

