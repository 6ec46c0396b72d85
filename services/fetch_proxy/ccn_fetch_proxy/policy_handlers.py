"""The domain-policy commands (`ccn.cmd.domains.<command>`): allow, block, update, get and
import. The decider (ccn_core.domain.domain_policy) rules on each; this module turns requests
into decisions and appends them with optimistic concurrency, so any number of proxy replicas
may serve them. An import is a batch of CSV rows, each decided on its own: one bad row refuses
that row, never its neighbours."""

from __future__ import annotations

import asyncio

from ccn_core.aggregate import AggregateRepository, EventMeta
from ccn_core.commands import CommandContext, CommandServer, item_outcome
from ccn_core.domain.domain_policy import DomainPolicyCommand, DomainPolicyState, canonical_domain, policy_id
from ccn_core.domain_requests import PolicyRequest, decision_of, policy_view
from ccn_core.errors import NotFound
from ccn_proto.domains import (
    AllowDomainRequest,
    BlockDomainRequest,
    DomainEvent,
    DomainPolicyReply,
    DomainPolicyView,
    GetDomainPolicy,
    ImportDomains,
    ImportDomainsReply,
    ImportedRow,
    RefusedRow,
    UpdateDomainRequest,
)
from ccn_proto.envelope import Actor

DomainPolicyRepository = AggregateRepository[DomainPolicyCommand, DomainPolicyState, DomainEvent]
# rows of one import decided at once: each is a different aggregate (the importer refuses a
# repeated domain), so they do not contend; the bound keeps an import from starving other commands
IMPORT_CONCURRENCY = 16


class DomainPolicyHandlers:
    def __init__(self, repository: DomainPolicyRepository) -> None:
        self._policies = repository

    def register_all(self, server: CommandServer) -> None:
        server.register("allow", AllowDomainRequest, self.change)
        server.register("block", BlockDomainRequest, self.change)
        server.register("update", UpdateDomainRequest, self.change)
        server.register("get", GetDomainPolicy, self.get)
        server.register("import", ImportDomains, self.import_rows)

    async def change(self, request: PolicyRequest, ctx: CommandContext) -> DomainPolicyReply:
        decision = decision_of(request)
        domain = canonical_domain(decision.domain)
        meta = EventMeta(
            correlation_id=ctx.correlation_id, causation_id=ctx.causation_id, actor=Actor(kind="admin", id=request.by)
        )
        aggregate_id = policy_id(domain)
        # Decide on the stored state, not this replica's cache: another replica may have changed
        # the policy since, and a decision that appends nothing (a refusal, or "already so") is
        # never checked by the server's OCC. One read per command; these are admins' commands.
        await self._policies.load(aggregate_id, fresh=True)
        executed = await self._policies.execute(aggregate_id, decision, meta)
        return DomainPolicyReply(policy=policy_view(executed.state, executed.version), changed=bool(executed.events))

    async def get(self, request: GetDomainPolicy, ctx: CommandContext) -> DomainPolicyView:
        domain = canonical_domain(request.domain)
        loaded = await self._policies.load(policy_id(domain), fresh=True)
        if loaded.state.status == "unreviewed":
            raise NotFound(f"no policy for {domain}")
        return policy_view(loaded.state, loaded.version)

    async def import_rows(self, request: ImportDomains, ctx: CommandContext) -> ImportDomainsReply:
        turns = asyncio.Semaphore(IMPORT_CONCURRENCY)

        async def decided(command: PolicyRequest) -> DomainPolicyReply:
            async with turns:
                return await self.change(command, ctx)

        outcomes = await asyncio.gather(*(item_outcome(decided(row.command)) for row in request.rows))
        accepted: list[ImportedRow] = []
        rejected: list[RefusedRow] = []
        for row, (reply, error) in zip(request.rows, outcomes, strict=True):
            if reply is not None:
                accepted.append(ImportedRow(line=row.line, domain=reply.policy.domain, changed=reply.changed))
            else:
                reason = error.message if error is not None else "not decided"
                rejected.append(RefusedRow(line=row.line, domain=row.command.domain[:128], reason=reason))
        return ImportDomainsReply(accepted=accepted, rejected=rejected)
