"""Port checks done before anything starts, so a clash is reported by name, not as a crash log."""

from __future__ import annotations

import os
import random
import socket
from collections import deque
from pathlib import Path

from ccn_cli.stack.errors import PortInUse


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    # SO_REUSEADDR as nats-server and postgres set it: only a live listener makes the port busy,
    # not connections lingering in TIME_WAIT from a server that just stopped.
    return _binds(port, host, reuse_addr=True)


def require_free_port(port: int, what: str, env_var: str) -> None:
    if not port_is_free(port):
        raise PortInUse(port, what, env_var)


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# below the ephemeral range, with room for the NATS monitoring port (CCN_NATS_PORT+4000) there too
_LOWEST_PICK = 10_000
_MONITOR_OFFSET = 4_000
_PICK_ATTEMPTS = 200
# "k/n": this process picks only ports p with p % n == k. Processes that pick ports side by side
# (a test run's workers, each setting its own share) then never pick the same one: a port is only
# free until its server binds it, so two pickers could otherwise both take it in that gap, and
# one would talk to the other's server. n dividing 4,000 keeps a port's monitoring port in the share.
FREE_PORT_SHARE_ENV = "CCN_FREE_PORT_SHARE"
# the ports free_port handed out lately, not handed out again while they are here
_handed_out: deque[int] = deque(maxlen=512)


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def free_port() -> int:
    """A port free now, though nothing reserves it, picked below the ephemeral range: a port
    the kernel hands out for binding to 0 is also one it may give the next outgoing connection
    (a test's 200 WebSocket clients, a NATS reconnect) before the server binds it. Not one of
    the ports this process was handed lately: a test picks all its servers' ports before any
    binds, and the same free port twice would start two servers on it."""
    highest = max(_LOWEST_PICK, _ephemeral_low() - _MONITOR_OFFSET - 1)
    share, shares = _port_share()
    for _ in range(_PICK_ATTEMPTS):
        port = random.randint(_LOWEST_PICK + shares, highest)  # noqa: S311 - spreads picks, guards nothing
        port -= (port - share) % shares  # the nearest port of this process's share at or below
        # without SO_REUSEADDR: a port with connections lingering in TIME_WAIT is not picked either
        if port not in _handed_out and _binds(port, "127.0.0.1", reuse_addr=False):
            _handed_out.append(port)
            return port
    raise OSError(f"no free port found in {_PICK_ATTEMPTS} tries between {_LOWEST_PICK} and {highest}")


def _port_share() -> tuple[int, int]:
    """(k, n) from CCN_FREE_PORT_SHARE ("k/n", 0 <= k < n); (0, 1), every port, when unset."""
    raw = os.environ.get(FREE_PORT_SHARE_ENV, "")
    if not raw:
        return 0, 1
    try:
        share, shares = (int(part) for part in raw.split("/"))
    except ValueError:
        raise ValueError(f"{FREE_PORT_SHARE_ENV}={raw!r}: expected k/n, e.g. 1/2") from None
    if not 0 <= share < shares:
        raise ValueError(f"{FREE_PORT_SHARE_ENV}={raw!r}: k must be at least 0 and below n")
    return share, shares


def _binds(port: int, host: str, *, reuse_addr: bool) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if reuse_addr:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def accepts_tcp(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
