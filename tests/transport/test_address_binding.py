"""A session lives at one address: its datagrams arriving from elsewhere are not trusted."""

from __future__ import annotations

from transport_harness import CLIENT, SERVER, drain, transfer

from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import MessageReceived

CONFIG = TransportConfig(initial_rtt=0.1, max_ack_delay=0.005)
IMPOSTOR = ("10.9.9.9", 40000)


def _session() -> tuple[Endpoint, Endpoint, list[bytes]]:
    """A client that delivered one call to a server; returns the call's datagrams."""
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=0xC1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=0x5E)
    client.send_message(SERVER, b"call", now=0.0)
    sent = transfer(client, CLIENT, server, now=0.0)
    assert [type(e) for e in drain(server)] == [MessageReceived]
    return client, server, sent


def test_a_copy_of_a_sessions_datagram_from_another_address_is_dropped_and_counted() -> None:
    _, server, sent = _session()
    before = server.statistics()
    for data in sent:
        server.receive_datagram(data, IMPOSTOR, now=0.001)
    assert drain(server) == []  # the call is not delivered a second time
    assert server.peer_statistics(IMPOSTOR) is None  # no peer state for the impostor
    after = server.statistics()
    assert after.address_mismatch_drops == before.address_mismatch_drops + len(sent)
    assert after.peers == 1
    assert all(addr == CLIENT for _, addr in server.datagrams_to_send(now=0.002))


def test_a_datagram_echoing_the_server_epoch_from_elsewhere_validates_nothing() -> None:
    client, server, _ = _session()
    server.send_message(CLIENT, b"reply", now=0.001)
    transfer(server, SERVER, client, now=0.001)
    # The client's next datagram echoes the server's epoch: sent from another address, it
    # must neither validate that address nor touch the real peer.
    client.send_message(SERVER, b"second", now=0.002)
    echoed = [data for data, _ in client.datagrams_to_send(now=0.002)]
    for data in echoed:
        server.receive_datagram(data, IMPOSTOR, now=0.002)
    assert server.peer_statistics(IMPOSTOR) is None
    real = server.peer_statistics(CLIENT)
    assert real is not None
    assert real.datagrams_received == 1
    assert not real.validated
    assert drain(server) == []
    # The same datagrams from the real address are accepted as usual.
    for data in echoed:
        server.receive_datagram(data, CLIENT, now=0.003)
    assert [e.payload for e in drain(server) if isinstance(e, MessageReceived)] == [b"second"]


def test_a_forgotten_session_may_come_back_from_a_new_address() -> None:
    _, server, sent = _session()
    server.forget_peer(CLIENT)
    for data in sent:
        server.receive_datagram(data, IMPOSTOR, now=0.001)
    assert server.statistics().address_mismatch_drops == 0
    assert server.peer_statistics(IMPOSTOR) is not None
