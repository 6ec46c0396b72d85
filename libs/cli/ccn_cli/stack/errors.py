"""Errors an operator can act on: `ccn` prints their message alone, without a traceback."""

from __future__ import annotations


class StackError(RuntimeError):
    """Something in the stack could not start, stop or be reached; the message says what to do."""


class PortInUse(StackError):
    def __init__(self, port: int, what: str, env_var: str) -> None:
        super().__init__(f"port {port} ({what}) is in use; set {env_var} to a free port")
        self.port = port
