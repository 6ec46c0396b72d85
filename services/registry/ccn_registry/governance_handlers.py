"""The registry's governance commands: admins' actions on a node, and the records of its work,
its rate-limit refusals and its liveness that the observer and the edges send. The node decider
rules on each; this module only turns commands into decisions and states into views."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ccn_core.aggregate import AggregateRepository, EventMeta
from ccn_core.commands import CommandContext, CommandServer
from ccn_core.domain import governance
from ccn_core.domain.node import (
    AdminAction,
    NodeCommand,
    NodeState,
)
from ccn_core.domain.node import (
    ObserveLiveness as ObserveLivenessDecision,
)
from ccn_core.domain.node import (
    RecordRateLimited as RecordRateLimitedDecision,
)
from ccn_core.domain.node import (
    RecordWork as RecordWorkDecision,
)
from ccn_core.domain.node import (
    SetBudgets as SetBudgetsDecision,
)
from ccn_core.errors import NotFound
from ccn_proto.envelope import Actor
from ccn_proto.nodes import NodeEvent, NodeRateLimited
from ccn_proto.registry import (
    AdminNodeAction,
    BanNode,
    DrainNode,
    GetNode,
    NodeActionReply,
    NodeView,
    ObserveLiveness,
    RecordRateLimited,
    RecordWork,
    Reputation,
    ReputationInputs,
    SetNodeBudgets,
    ShadowBanNode,
    UnbanNode,
)

NodeRepository = AggregateRepository[NodeCommand, NodeState, NodeEvent]
REGISTRY_ACTOR = Actor(kind="service", id="registry")


def reputation_of(state: NodeState) -> Reputation:
    """The node's score, with every figure it came from (all from the node's history)."""
    record = state.record
    scored = governance.reputation(record)
    outcomes = record.completed + record.failed + record.abandoned + record.budget_violations
    compared = record.agreed + record.disagreed
    return Reputation(
        score=scored.score,
        components=scored.components,
        inputs=ReputationInputs(
            completed=record.completed,
            failed=record.failed,
            abandoned=record.abandoned,
            budget_violations=record.budget_violations,
            agreed=record.agreed,
            disagreed=record.disagreed,
            mean_job_ms=record.total_job_ms / record.completed if record.completed else None,
            health_changes=record.health_changes,
            rate_limited=record.rate_limited,
            success_rate=record.completed / outcomes if outcomes else None,
            agreement_rate=record.agreed / compared if compared else None,
            consensus_disagreed=record.consensus_disagreed,
        ),
    )


def node_view(state: NodeState, now: datetime) -> NodeView:
    return NodeView(
        node_id=state.node_id,
        status=state.status,
        banned=state.banned,
        ban_reason=state.ban_reason,
        shadow_banned=state.shadow_banned,
        draining=state.draining,
        health=state.health,
        backoff_stage=state.backoff_stage,
        backoff_until=state.backoff_until,
        consent_version=state.consent_version,
        consent_scopes=list(state.consent_scopes),
        daily_quota=state.daily_quota,
        budgets=state.budgets,
        reputation=reputation_of(state),
        active_sessions=len(state.sessions),
        server_time=now,
    )


class GovernanceHandlers:
    def __init__(self, repository: NodeRepository, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._nodes = repository
        self._clock = clock

    def register_all(self, server: CommandServer) -> None:
        for name, command_type in (
            ("ban", BanNode),
            ("unban", UnbanNode),
            ("shadow_ban", ShadowBanNode),
            ("drain", DrainNode),
        ):
            server.register(name, command_type, self.admin_action)
        server.register("set_budgets", SetNodeBudgets, self.set_budgets)
        server.register("get_node", GetNode, self.get_node)
        server.register("record_work", RecordWork, self.record_work)
        server.register("record_rate_limited", RecordRateLimited, self.record_rate_limited)
        server.register("observe_liveness", ObserveLiveness, self.observe_liveness)

    async def admin_action(self, command: AdminNodeAction, ctx: CommandContext) -> NodeActionReply:
        action = {BanNode: "ban", UnbanNode: "unban", ShadowBanNode: "shadow_ban", DrainNode: "drain"}[type(command)]
        decision = AdminAction(action=action, reason=command.reason, by=command.by)  # type: ignore[arg-type]
        meta = self._meta(ctx, Actor(kind="admin", id=command.by))
        executed = await self._nodes.execute(command.node_id, decision, meta)
        return NodeActionReply(node_id=command.node_id, changed=bool(executed.events), server_time=self._clock())

    async def set_budgets(self, command: SetNodeBudgets, ctx: CommandContext) -> NodeActionReply:
        meta = self._meta(ctx, Actor(kind="admin", id=command.budgets.by))
        executed = await self._nodes.execute(command.node_id, SetBudgetsDecision(budgets=command.budgets), meta)
        return NodeActionReply(node_id=command.node_id, changed=bool(executed.events), server_time=self._clock())

    async def get_node(self, command: GetNode, ctx: CommandContext) -> NodeView:
        loaded = await self._nodes.load(command.node_id, fresh=True)
        if loaded.state.status == "unregistered":
            raise NotFound(f"no node {command.node_id}")
        return node_view(loaded.state, self._clock())

    async def record_work(self, command: RecordWork, ctx: CommandContext) -> NodeActionReply:
        meta = self._meta(ctx, REGISTRY_ACTOR, idempotency_key=f"work:{command.key}")
        executed = await self._nodes.execute(command.node_id, RecordWorkDecision(work=command.work), meta)
        return NodeActionReply(node_id=command.node_id, changed=bool(executed.events), server_time=self._clock())

    async def record_rate_limited(self, command: RecordRateLimited, ctx: CommandContext) -> NodeActionReply:
        refused = NodeRateLimited(
            window_start=command.window_start, window_end=command.window_end, refused=command.refused
        )
        meta = self._meta(ctx, REGISTRY_ACTOR, idempotency_key=f"rate:{command.key}")
        executed = await self._nodes.execute(command.node_id, RecordRateLimitedDecision(refused=refused), meta)
        return NodeActionReply(node_id=command.node_id, changed=bool(executed.events), server_time=self._clock())

    async def observe_liveness(self, command: ObserveLiveness, ctx: CommandContext) -> NodeActionReply:
        meta = self._meta(ctx, REGISTRY_ACTOR)
        executed = await self._nodes.execute(command.node_id, ObserveLivenessDecision(silent_s=command.silent_s), meta)
        return NodeActionReply(node_id=command.node_id, changed=bool(executed.events), server_time=self._clock())

    def _meta(self, ctx: CommandContext, actor: Actor, *, idempotency_key: str | None = None) -> EventMeta:
        return EventMeta(
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
            actor=actor,
            idempotency_key=idempotency_key,
        )
