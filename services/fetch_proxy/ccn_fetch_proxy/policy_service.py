"""The fetch proxy's domain-policy part: the command handlers (`ccn.cmd.domains.*`) and the
in-memory policy book the proxy checks every URL against. The proxy's app starts it."""

from __future__ import annotations

from ccn_core.aggregate import AggregateRepository
from ccn_core.commands import CommandServer
from ccn_core.domain.domain_policy import DomainPolicyDecider
from ccn_core.service import Runtime
from ccn_core.topology import POLICY
from ccn_fetch_proxy.policy_book import PolicyBook
from ccn_fetch_proxy.policy_handlers import DomainPolicyHandlers
from ccn_proto.domains import DomainEvent

DOMAINS_SERVICE = "domains"
# an import of a big file arrives as a run of chunk commands, each waiting its turn
_MAX_WAITING_COMMANDS = 256


async def start_domain_policy(runtime: Runtime, *, max_domains: int | None = None) -> PolicyBook:
    """Serve the domain-policy commands and follow CCN_POLICY into a book; both stop with the
    runtime. Returns once the book has replayed the stream (it is ready)."""
    repository = AggregateRepository(
        runtime.store,
        DomainPolicyDecider(),
        DomainEvent,
        stream=POLICY.name,
        deadline_s=runtime.settings.command_timeout_s,
    )
    server = CommandServer(runtime.nc, DOMAINS_SERVICE, max_waiting=_MAX_WAITING_COMMANDS)
    DomainPolicyHandlers(repository).register_all(server)
    book = PolicyBook() if max_domains is None else PolicyBook(max_domains=max_domains)
    await book.start(runtime.store, runtime.js)
    runtime.on_stop(book.stop)
    await server.start()
    runtime.on_stop(server.stop)
    return book
