"""RTT estimation (RFC 9002 §5) against hand-computed values, and on real exchanges."""

from __future__ import annotations

import pytest
from transport_harness import CLIENT, SERVER, transfer

from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.rtt import RttEstimator


def test_initial_values_follow_rfc_9002() -> None:
    rtt = RttEstimator(0.333)
    assert rtt.smoothed_rtt == 0.333
    assert rtt.rttvar == pytest.approx(0.1665)
    # PTO = srtt + max(4 * rttvar, 1 ms) + max_ack_delay
    assert rtt.pto_base(0.025, 0.001) == pytest.approx(0.333 + 0.666 + 0.025)


def test_samples_update_the_estimates_as_computed_by_hand() -> None:
    rtt = RttEstimator(0.333)
    rtt.update(0.100, ack_delay=0.0, max_ack_delay=0.025)  # first sample: taken as it is
    assert (rtt.smoothed_rtt, rtt.rttvar, rtt.min_rtt) == pytest.approx((0.1, 0.05, 0.1))
    rtt.update(0.200, ack_delay=0.010, max_ack_delay=0.025)  # adjusted to 0.190
    assert rtt.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.09)  # 0.06
    assert rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.19)  # 0.11125
    # Reported delay capped at max_ack_delay (0.025), and not subtracted: 0.105 < 0.1 + 0.025.
    rtt.update(0.105, ack_delay=0.050, max_ack_delay=0.025)
    assert rtt.rttvar == pytest.approx(0.0465625)
    assert rtt.smoothed_rtt == pytest.approx(0.11046875)
    assert rtt.min_rtt == pytest.approx(0.1)
    assert rtt.pto_base(0.025, 0.001) == pytest.approx(0.11046875 + 4 * 0.0465625 + 0.025)
    assert rtt.loss_delay() == pytest.approx(9 / 8 * 0.11046875)


def test_probe_timeout_has_a_floor_for_loopback() -> None:
    rtt = RttEstimator(0.333)
    rtt.update(0.0001, ack_delay=0.0, max_ack_delay=0.0)
    # 0.1 ms + max(0.2 ms, 1 ms granularity) = 1.1 ms, lifted to the 2 ms floor.
    assert rtt.pto_base(0.0, 0.002) == pytest.approx(0.002)


def test_endpoint_measures_rtt_net_of_the_reported_ack_delay() -> None:
    config = TransportConfig(initial_rtt=0.1, max_ack_delay=0.005)
    client = Endpoint(config, accept_new_peers=False)
    server = Endpoint(config, accept_new_peers=True)
    client.send_message(SERVER, b"call", now=0.0)
    transfer(client, CLIENT, server, now=0.010)  # the call leaves at 0.010 ...
    server.send_message(CLIENT, b"reply", now=0.012)  # ... the reply carries its ack
    transfer(server, SERVER, client, now=0.032)  # arrives 22 ms after the call left
    stats = client.peer_statistics(SERVER)
    assert stats is not None
    assert stats.latest_rtt == pytest.approx(0.022)
    assert stats.smoothed_rtt == pytest.approx(0.022)
    client.send_message(SERVER, b"second", now=1.0)
    transfer(client, CLIENT, server, now=1.0)
    server.handle_timer(now=1.005)  # no reply: a standalone ack after max_ack_delay
    transfer(server, SERVER, client, now=1.030)
    stats = client.peer_statistics(SERVER)
    assert stats is not None
    assert stats.latest_rtt == pytest.approx(0.030)
    assert stats.min_rtt == pytest.approx(0.022)
    assert stats.rttvar == pytest.approx(0.75 * 0.011 + 0.25 * 0.003)  # adjusted sample 0.025
    assert stats.smoothed_rtt == pytest.approx(0.875 * 0.022 + 0.125 * 0.025)
