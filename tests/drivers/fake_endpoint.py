"""A minimal stand-in for the sans-I/O endpoint, to test the drivers' mechanics alone.

Each message goes out as one datagram ``b"M" + id + payload``; the receiver answers with
``b"A" + id``. Timers are whatever the test schedules. No reliability: that is the endpoint's job.
"""

from __future__ import annotations

from dataclasses import dataclass

Address = tuple[str, int]


@dataclass(frozen=True)
class FakeEvent:
    kind: str  # "message", "acked" or "timer"
    addr: Address | None = None
    data: bytes = b""
    message_id: int = 0
    time: float = 0.0


class FakeEndpoint:
    def __init__(self, *, timer_after_send: float | None = None, stuck_timer: bool = False) -> None:
        self.outgoing: list[tuple[bytes, Address]] = []
        self.events: list[FakeEvent] = []
        self.timers: list[float] = []
        self.timer_fires: list[float] = []
        self.received_at: list[float] = []
        self.next_id = 0
        self.timer_after_send = timer_after_send
        self.stuck_timer = stuck_timer
        self.closed_at: list[float] = []

    def send_message(
        self, addr: Address, payload: bytes, *, now: float, keep_liveness_clock: bool = False
    ) -> int:
        self.next_id += 1
        self.outgoing.append((b"M" + self.next_id.to_bytes(4, "big") + payload, addr))
        if self.timer_after_send is not None:
            self.timers.append(now + self.timer_after_send)
        return self.next_id

    def receive_datagram(self, data: bytes, addr: Address, *, now: float) -> None:
        self.received_at.append(now)
        kind, message_id = data[:1], int.from_bytes(data[1:5], "big")
        if kind == b"M":
            self.events.append(FakeEvent("message", addr, data[5:], message_id))
            self.outgoing.append((b"A" + data[1:5], addr))
        elif kind == b"A":
            self.events.append(FakeEvent("acked", addr, b"", message_id))

    def handle_timer(self, *, now: float) -> None:
        self.timer_fires.append(now)
        due = [t for t in self.timers if t <= now]
        if not self.stuck_timer:
            self.timers = [t for t in self.timers if t > now]
        if due:
            self.events.append(FakeEvent("timer", time=now))

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Address]]:
        out, self.outgoing = self.outgoing, []
        return out

    def get_timer(self) -> float | None:
        return min(self.timers, default=None)

    def next_event(self) -> FakeEvent | None:
        return self.events.pop(0) if self.events else None

    def close_all_peers(self, *, now: float) -> None:
        self.closed_at.append(now)  # records only: the drivers' own counts stay as they were
