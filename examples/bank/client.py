"""Move money through a lossy chaos proxy and check every balance to the cent.

``python -m examples.bank.client [--port 7001] [--operations 600]``

The client starts a :class:`rpc.testing.ChaosProxy` in front of the bank server that loses,
duplicates and corrupts datagrams both ways, so calls and replies are retransmitted many times.
Deposits, withdrawals and transfers are not idempotent: if any ran twice (or not at all while
reporting success) a balance would be off. The client keeps its own ledger of what each call
reported and compares it with the bank's balances at the end.
"""

from __future__ import annotations

import random
import secrets
import sys
from dataclasses import dataclass, field
from typing import Any

import trio

import rpc
from examples._support import load_stubs, port_argument
from rpc.testing import LinkFaults
from rpc.testing.chaos_proxy import ChaosProxy

bank = load_stubs("bank")

FAULTS = LinkFaults(loss=0.10, duplicate=0.05, corrupt=0.05)
ACCOUNTS = 5
OPENING_DEPOSIT = 10_000  # cents
IN_FLIGHT = 8
TIMEOUT = 10.0  # per call: generous, so a failure means a bug rather than a slow machine


@dataclass
class Ledger:
    """What the client believes, built only from the replies it got."""

    balances: dict[str, int]
    applied: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)


async def one_operation(teller: Any, ledger: Ledger, rng: random.Random) -> None:
    """A random deposit, withdrawal or transfer; the ledger follows what the bank said."""
    names = list(ledger.balances)
    source, target = rng.sample(names, 2)
    amount = rng.randint(1, 4_000)
    kind = rng.choice(("deposit", "withdraw", "transfer"))
    try:
        if kind == "deposit":
            await teller.deposit(source, amount, timeout=TIMEOUT)
            ledger.balances[source] += amount
        elif kind == "withdraw":
            await teller.withdraw(source, amount, timeout=TIMEOUT)
            ledger.balances[source] -= amount
        else:
            await teller.transfer(source, target, amount, timeout=TIMEOUT)
            ledger.balances[source] -= amount
            ledger.balances[target] += amount
        ledger.applied += 1
    except bank.InsufficientFunds:
        ledger.refused += 1  # outcome EXECUTED: the bank ran the call and changed nothing
    except rpc.RpcError as exc:
        ledger.errors.append(f"{kind}: {type(exc).__name__} ({exc.outcome.value}): {exc}")


async def run_operations(teller: Any, ledger: Ledger, count: int, seed: int) -> None:
    """``count`` operations, ``IN_FLIGHT`` at a time."""
    rng = random.Random(seed)
    remaining = iter(range(count))

    async def worker() -> None:
        for _ in remaining:
            await one_operation(teller, ledger, rng)

    async with trio.open_nursery() as nursery:
        for _ in range(IN_FLIGHT):
            nursery.start_soon(worker)


async def main(host: str, port: int, count: int, seed: int) -> int:
    """Open accounts, move money through the proxy, then compare balances with the ledger."""
    prefix = secrets.token_hex(4)  # fresh account names, so the client can run again
    ledger = Ledger({f"{prefix}-{i}": OPENING_DEPOSIT for i in range(ACCOUNTS)})
    async with ChaosProxy((host, port), FAULTS, FAULTS, seed=seed) as proxy:
        async with rpc.connect(*proxy.address) as connection:
            teller = bank.BankClient(connection)
            before = await teller.operations(timeout=TIMEOUT)
            for name in ledger.balances:
                await teller.open(name, timeout=TIMEOUT)
                await teller.deposit(name, OPENING_DEPOSIT, timeout=TIMEOUT)
            await run_operations(teller, ledger, count, seed)
            actual = {name: await teller.balance(name, timeout=TIMEOUT) for name in ledger.balances}
            executed = await teller.operations(timeout=TIMEOUT) - before - ACCOUNTS
            transport = connection.statistics().transport
        faults = proxy.statistics()
    print(f"{count} operations through the chaos proxy ({FAULTS.loss:.0%} loss, "
          f"{FAULTS.duplicate:.0%} duplication, {FAULTS.corrupt:.0%} corruption each way)")
    print(f"  proxy: lost {faults.to_server.dropped_loss + faults.to_client.dropped_loss}, "
          f"duplicated {faults.to_server.duplicated + faults.to_client.duplicated}, "
          f"corrupted {faults.to_server.corrupted + faults.to_client.corrupted} datagrams")
    print(f"  client: {transport.retransmissions} retransmissions, "
          f"{transport.crc_failures} corrupted datagrams dropped")
    print(f"  {ledger.applied} applied, {ledger.refused} refused with InsufficientFunds; "
          f"the bank executed {executed} money operations")
    exact = actual == ledger.balances and executed == ledger.applied and not ledger.errors
    for name, expected in ledger.balances.items():
        mark = "ok" if actual[name] == expected else "WRONG"
        print(f"  {name}: expected {expected:>8} got {actual[name]:>8}  {mark}")
    for error in ledger.errors:
        print(f"  FAILED CALL: {error}")
    print("every balance is exact: each operation ran exactly once" if exact else "MISMATCH")
    return 0 if exact else 1


if __name__ == "__main__":
    parser = port_argument("Move money through a lossy chaos proxy.", 7001)
    parser.add_argument("--operations", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.exit(trio.run(main, args.host, args.port, args.operations, args.seed))
