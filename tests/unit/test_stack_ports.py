"""Ports for test and bench servers are picked where no outgoing connection can take them."""

from __future__ import annotations

import socket
from collections import deque
from pathlib import Path

import pytest

from ccn_cli.stack import ports
from ccn_cli.stack.ports import free_port, port_is_free


def test_a_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(20):
        port = free_port()
        assert port + 4000 < low  # the NATS monitoring port beside it too
        assert port_is_free(port)


def test_a_listening_port_is_not_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", free_port()))
        listener.listen()
        taken = listener.getsockname()[1]
        other = free_port()
        picks = iter([taken, other])
        monkeypatch.setattr(ports.random, "randint", lambda low, high: next(picks))
        monkeypatch.setattr(ports, "_handed_out", deque(maxlen=8))  # as if neither was handed out
        assert free_port() == other


@pytest.mark.parametrize("share", ["0/2", "1/2", "3/4"])
def test_a_process_with_a_share_picks_only_its_share_of_the_ports(share: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ports.FREE_PORT_SHARE_ENV, share)
    k, n = (int(part) for part in share.split("/"))
    picks = [free_port() for _ in range(50)]
    assert all(port % n == k and (port + 4000) % n == k for port in picks)


@pytest.mark.parametrize("share", ["1", "2/2", "-1/2", "a/b", "1/0"])
def test_a_malformed_share_is_refused_by_name(share: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ports.FREE_PORT_SHARE_ENV, share)
    with pytest.raises(ValueError, match=ports.FREE_PORT_SHARE_ENV):
        free_port()


def test_a_port_handed_out_lately_is_not_handed_out_again_before_anything_binds_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = free_port()
    other = free_port()
    picks = iter([first, other])
    monkeypatch.setattr(ports.random, "randint", lambda low, high: next(picks))
    monkeypatch.setattr(ports, "_handed_out", deque([first], maxlen=8))  # only the first was handed out
    assert free_port() == other != first
