"""Run a service's server and clients over a :class:`~rpc.testing.SimNetwork` in a few lines.

Meant for pytest-trio tests on ``MockClock(autojump_threshold=0)`` (the ``autojump_clock``
fixture)::

    async def test_add(autojump_clock):
        async with simulated_service([CalculatorImpl()], faults=LinkFaults(loss=0.2)) as sim:
            calc = CalculatorClient(sim.client)
            assert await calc.add(1, 2) == 3
        assert sim.network.statistics().dropped_loss > 0

The server can be killed abruptly (no graceful shutdown, as a crash would) and started again at
the same address with a new epoch, to test what callers see across a restart.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import trio

from rpc.calls.service import Handler
from rpc.client import Client, connect
from rpc.drivers._nursery import BackgroundNursery
from rpc.errors import RpcError
from rpc.server import Server
from rpc.testing._faults import CLEAN, LinkFaults
from rpc.testing._simnet import SimNetwork
from rpc.transport.config import TransportConfig

Address = tuple[str, int]

#: Where the simulated server listens unless told otherwise (a private-range address).
DEFAULT_SERVER_ADDRESS: Address = ("10.0.0.1", 7000)
#: Seconds a server gets to finish its calls when the block ends.
SHUTDOWN_GRACE = 1.0


class SimService:
    """A server for some handlers on a simulated network, and clients connected to it.

    Made by :func:`simulated_service`; :attr:`client` is a client connected when the block
    started, :meth:`connect` opens more (each from a fresh simulated host).
    """

    def __init__(
        self,
        network: SimNetwork,
        address: Address,
        handlers: Sequence[Handler],
        nursery: trio.Nursery,
        server_options: dict[str, Any],
        client_config: TransportConfig | None,
    ) -> None:
        self.network = network
        self.address = address
        self._handlers = list(handlers)
        self._nursery = nursery
        self._server_options = server_options
        self._client_config = client_config
        self._server: Server | None = None
        self._kill: trio.CancelScope | None = None
        self._stopped = trio.Event()
        self._client: Client | None = None

    @property
    def server(self) -> Server:
        """The running server instance (a new one after :meth:`start_server`)."""
        if self._server is None:
            raise RpcError("the simulated server is not running")
        return self._server

    @property
    def client(self) -> Client:
        """The client connected when the block started."""
        if self._client is None:
            raise RpcError("the simulated service has no default client")
        return self._client

    @contextlib.asynccontextmanager
    async def connect(
        self, *, config: TransportConfig | None = None, address: Address | None = None
    ) -> AsyncIterator[Client]:
        """Another client of the server, bound at ``address`` (default: a fresh host)."""
        sock = self.network.socket(address)
        chosen = config if config is not None else self._client_config
        async with connect(*self.address, socket=sock, config=chosen) as client:
            yield client

    async def start_server(self, handlers: Sequence[Handler] | None = None) -> Server:
        """Start a server (a fresh instance, new epoch) at :attr:`address`; returns it.

        ``handlers`` replace the ones given so far (for example fresh objects, as a restarted
        process would have).
        """
        if self._server is not None:
            raise RpcError("the simulated server is already running; kill it first")
        if handlers is not None:
            self._handlers = list(handlers)
        server = Server(
            self._handlers, socket=self.network.socket(self.address), **self._server_options
        )
        self._stopped = trio.Event()
        self._kill = await self._nursery.start(self._run_server, server)
        self._server = server
        return server

    async def kill_server(self) -> None:
        """Stop the server at once, as a crash would: running handlers are cancelled, no
        reply is sent, the socket closes and the address becomes free."""
        if self._kill is None:
            return
        self._kill.cancel()
        await self._stopped.wait()
        self._kill = None
        self._server = None

    async def stop_server(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Shut the server down gracefully (see ``Server.shutdown``)."""
        if self._server is None:
            return
        await self._server.shutdown(grace=grace)
        await self._stopped.wait()
        self._kill = None
        self._server = None

    async def _run_server(
        self, server: Server, *, task_status: trio.TaskStatus[trio.CancelScope]
    ) -> None:
        stopped = self._stopped
        try:
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    await nursery.start(server.serve)
                    task_status.started(scope)
        finally:
            stopped.set()


@contextlib.asynccontextmanager
async def simulated_service(
    handlers: Sequence[Handler],
    *,
    seed: int = 0,
    faults: LinkFaults = CLEAN,
    network: SimNetwork | None = None,
    address: Address = DEFAULT_SERVER_ADDRESS,
    client_config: TransportConfig | None = None,
    **server_options: Any,
) -> AsyncIterator[SimService]:
    """Serve ``handlers`` on a simulated network and connect one client to them.

    ``seed`` and ``faults`` make a new :class:`SimNetwork` (or pass ``network``);
    ``server_options`` go to :class:`rpc.Server` (``config``, ``max_concurrent``,
    ``reply_cache``...). On exit the client closes and the server shuts down gracefully.
    """
    net = network if network is not None else SimNetwork(seed, faults=faults)
    async with BackgroundNursery() as nursery:
        sim = SimService(net, address, handlers, nursery, server_options, client_config)
        await sim.start_server()
        try:
            async with sim.connect() as client:
                sim._client = client
                yield sim
        except BaseException:
            with trio.CancelScope(shield=True):
                await sim.kill_server()
            raise
        finally:
            sim._client = None
        await sim.stop_server()

__all__ = ["DEFAULT_SERVER_ADDRESS", "SimService", "simulated_service"]
