"""A node's whole life: credentials, consent, the protocol loop, and an exit code."""

from __future__ import annotations

import asyncio
import importlib.metadata
import signal

import aiohttp
import structlog

from ccn_cli.console import fail
from ccn_cli.node.client import NodeClient
from ccn_cli.node.config import NodeConfig, http_url
from ccn_cli.node.credentials import CredentialsError, credentials_path
from ccn_cli.node.edge_http import EdgeHttp
from ccn_cli.node.enrolment import Enrolment, NodeRefused
from ccn_core.logging import get_logger

log = get_logger("ccn.node")

EXIT_OK = 0
EXIT_REFUSED = 1


def node_version() -> str:
    try:
        return importlib.metadata.version("ccn-cli")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def build_client(config: NodeConfig, http: aiohttp.ClientSession) -> NodeClient:
    version = node_version()
    edge = EdgeHttp(http, http_url(config.edge_url), timeout_s=config.http_timeout_s, user_agent=f"ccn-node/{version}")
    enrolment = Enrolment(
        edge, credentials_path(config.home, config.name), edge_url=http_url(config.edge_url), node_version=version
    )
    return NodeClient(config, enrolment, http, node_version=version)


async def run_node(config: NodeConfig, *, stop_signals: bool = True) -> int:
    """Run until SIGTERM/SIGINT (a second one skips the grace period); the exit code."""
    structlog.contextvars.bind_contextvars(node=config.name)
    async with aiohttp.ClientSession() as http:
        client = build_client(config, http)
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if stop_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, client.request_stop)
                installed.append(signum)
        try:
            await client.run()
        except (NodeRefused, CredentialsError) as exc:
            log.error("node refused", reason=str(exc))
            fail(str(exc))
            return EXIT_REFUSED
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
    log.info("node stopped")
    return EXIT_OK
