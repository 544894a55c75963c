"""Scenario 18: with a retry policy, rolling restarts under load fail no call and run none
twice. 32 callers keep calling a non-idempotent method through a lossy network while the
server is shut down gracefully and replaced, three times. Calls refused during a drain
(``ShuttingDown``), outstanding at a drained CLOSE, or sent while no server runs are all known
not to have run, so the policy retries them on the successor; nothing that may have run is
retried."""

from __future__ import annotations

import itertools
import random

import trio

import rpc
from rpc.testing import LinkFaults, simulated_service
from rpc.transport.config import TransportConfig
from tests.acceptance.helpers import Ledger, apply_checked
from tests.acceptance.service import Chaos

BOUND = 300.0  # virtual seconds
CALLERS = 32
RESTARTS = 3
RETRY_LIMITS = {"attempts": 30, "initial_backoff": 0.05, "max_backoff": 0.5}
#: How long each incarnation serves: a few probe timeouts, so that callers whose handshake
#: was lost in the gap between two incarnations get through to this one.
SERVING = 1.5
#: Shorter than the gap between restarts: calls sent while no server runs are declared
#: unreachable (outcome UNKNOWN unless nothing was sent) well before the next one is up only
#: if this were shorter; it is longer, so they wait in retransmission and reach the successor.
CONFIG = TransportConfig(peer_timeout=10.0)


async def test_s18_rolling_restarts_with_retries_fail_nothing(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    # Seeded jitter: the scenario replays exactly (the simulated network is seeded too).
    retry = rpc.RetryPolicy(**RETRY_LIMITS, rng=random.Random(18))  # type: ignore[arg-type]
    incarnations = [chaos.impl() for _ in range(RESTARTS + 1)]
    ledger = Ledger()
    ids = itertools.count(1)
    lossy = LinkFaults(loss=0.05)
    with trio.fail_after(BOUND):
        async with simulated_service(
            [incarnations[0]], seed=18, faults=lossy, config=CONFIG, client_config=CONFIG
        ) as sim:
            async with sim.connect() as caller:
                retrying = caller  # a second client: its default policy retries
                client = chaos.client(retrying)
                stop = trio.Event()

                async def worker() -> None:
                    while not stop.is_set():
                        call_id = next(ids)
                        try:
                            await client.apply(call_id, b"x" * 16, timeout=60.0, retry=retry)
                        except rpc.RpcError as exc:
                            ledger.failed[call_id] = exc
                        else:
                            ledger.returned.add(call_id)

                async with trio.open_nursery() as nursery:
                    for _ in range(CALLERS):
                        nursery.start_soon(worker)
                    for impl in incarnations[1:]:
                        await trio.sleep(SERVING)
                        await sim.stop_server(grace=5.0)
                        await trio.sleep(0.2)  # no server at all for a moment
                        await sim.start_server([impl])
                    await trio.sleep(1.0)
                    stop.set()
                retries = retrying.statistics().retries
            await apply_checked(chaos.client(sim.client), ledger, next(ids), timeout=10.0)
    assert ledger.failed == {}
    executions = sum((impl.executions for impl in incarnations), start=type(
        incarnations[0].executions)())
    ledger.check_at_most_once(executions)
    assert len(ledger.returned) > RESTARTS * CALLERS
    assert all(impl.executions for impl in incarnations)  # every incarnation served
    assert retries > 0  # the restarts were felt, and absorbed
    assert sim.network.statistics().dropped_loss > 0
