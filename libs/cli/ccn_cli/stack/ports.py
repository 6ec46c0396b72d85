"""Port checks done before anything starts, so a clash is reported by name, not as a crash log."""

from __future__ import annotations

import socket

from ccn_cli.stack.errors import PortInUse


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as nats-server and postgres set it: only a live listener makes the port busy,
        # not connections lingering in TIME_WAIT from a server that just stopped.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free_port(port: int, what: str, env_var: str) -> None:
    if not port_is_free(port):
        raise PortInUse(port, what, env_var)


def free_port() -> int:
    """A port the kernel just handed out; free now, though nothing reserves it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepts_tcp(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
