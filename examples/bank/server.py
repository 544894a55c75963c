"""The bank server: ``python -m examples.bank.server [--port 7001]``."""

from __future__ import annotations

import sys

import rpc
from examples._support import load_stubs, port_argument

bank = load_stubs("bank")


class Bank(bank.BankHandler):  # type: ignore[misc,name-defined]
    """Accounts in memory. Handlers never await, so each operation is atomic under trio."""

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.operations_done = 0

    def _account(self, account: str) -> int:
        if account not in self.balances:
            raise bank.NoSuchAccount(account=account)
        return self.balances[account]

    def _take(self, account: str, amount: int) -> None:
        """Check that ``amount`` may leave ``account`` (raises the declared errors)."""
        if amount <= 0:
            raise bank.BadAmount(amount=amount)
        balance = self._account(account)
        if balance < amount:
            raise bank.InsufficientFunds(account=account, balance=balance, requested=amount)

    async def open(self, account: str) -> None:
        if account in self.balances:
            raise bank.AccountExists(account=account)
        self.balances[account] = 0

    async def deposit(self, account: str, amount: int) -> int:
        if amount <= 0:
            raise bank.BadAmount(amount=amount)
        self.balances[account] = self._account(account) + amount
        self.operations_done += 1
        return self.balances[account]

    async def withdraw(self, account: str, amount: int) -> int:
        self._take(account, amount)
        self.balances[account] -= amount
        self.operations_done += 1
        return self.balances[account]

    async def transfer(self, source: str, target: str, amount: int) -> None:
        self._account(target)
        self._take(source, amount)
        self.balances[source] -= amount
        self.balances[target] += amount
        self.operations_done += 1

    async def balance(self, account: str) -> int:
        return self._account(account)

    async def operations(self) -> int:
        return self.operations_done


def main() -> int:
    """Serve the bank until Ctrl-C or SIGTERM; running calls finish first."""
    args = port_argument("Serve the bank over UDP.", 7001).parse_args()
    rpc.run_server(
        [Bank()], host=args.host, port=args.port,
        ready=lambda address: print(
            f"bank server listening on {address[0]}:{address[1]}", flush=True
        ),
    )
    print("bank server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
