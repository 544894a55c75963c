"""asyncio support: the same client and server as trio's, on an asyncio event loop (or uvloop).

``rpc.aio.connect`` takes the arguments of :func:`rpc.connect` and gives a client that the
generated client classes use unchanged::

    async with rpc.aio.connect("127.0.0.1", 7000) as client:
        print(await CalculatorClient(client).add(1, 2, timeout=1.0))
"""

from rpc.aio.client import Client, connect
from rpc.aio.server import Server

__all__ = ["Client", "Server", "connect"]
