"""Events the transport reports to the layer above (frozen dataclasses, see docs/design.md)."""

from __future__ import annotations

from dataclasses import dataclass

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A whole message arrived from ``addr`` (delivered at most once, in any order)."""

    addr: Address
    payload: bytes
    peer_epoch: int


@dataclass(frozen=True, slots=True)
class MessageAcked:
    """Every byte of message ``message_id`` to ``addr`` is acknowledged by the peer."""

    addr: Address
    message_id: int


@dataclass(frozen=True, slots=True)
class PeerUnreachable:
    """Nothing was acknowledged by ``addr`` within the peer timeout while data was outstanding.

    The listed messages were abandoned: each may or may not have been delivered.
    """

    addr: Address
    pending_message_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PeerRestarted:
    """``addr`` now speaks with a new epoch: the old incarnation is gone.

    Messages to the old incarnation that were not acknowledged are discarded (no MessageAcked
    will follow for them); whether the old incarnation processed them is unknown.
    """

    addr: Address
    old_epoch: int
    new_epoch: int


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """``addr`` (incarnation ``epoch``) closed its session with us (a CLOSE datagram).

    Its state is gone: messages to it that were not acknowledged are discarded (no MessageAcked
    and no PeerUnreachable follow for them); whether it processed them is unknown.
    """

    addr: Address
    epoch: int


@dataclass(frozen=True, slots=True)
class SendCapacityAvailable:
    """The send buffer of ``addr``, which was full, has room again."""

    addr: Address


TransportEvent = (
    MessageReceived
    | MessageAcked
    | PeerUnreachable
    | PeerRestarted
    | PeerClosed
    | SendCapacityAvailable
)

__all__ = [
    "Address",
    "MessageAcked",
    "MessageReceived",
    "PeerClosed",
    "PeerRestarted",
    "PeerUnreachable",
    "SendCapacityAvailable",
    "TransportEvent",
]
