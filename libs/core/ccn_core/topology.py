"""The event store's topology as data: every stream and every durable consumer, in one place.

`ccn topology apply` (run by `ccn up`, by a Kubernetes Job, and by the tests' fixtures through
`ensure_streams`) creates the streams and key-value buckets from here; services only check at
start that they exist (`missing_topology`) and name what they use. Durable consumers are made by
their owners: a projection's consumer starts at its checkpoint in PostgreSQL, which only the
projection knows (ccn_core.projection), and a reactor's is brought up to its subjects by the
reactor itself.
"""

from __future__ import annotations

import msgspec
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError

from ccn_core.document_bodies import BODY_BUCKET, open_body_store
from ccn_core.kv_lock import held_lock
from ccn_core.settings import Settings


class StreamSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    subjects: tuple[str, ...]
    description: str
    # 0 keeps events forever: the streams are the source of truth, not a buffer.
    max_age_s: float = 0.0


class ConsumerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A durable consumer: a projection (events → Postgres) or a reactor (events → commands)."""

    durable: str
    stream: str
    filter_subjects: tuple[str, ...]
    description: str


NODES = StreamSpec(
    name="CCN_NODES",
    subjects=("ccn.node.>",),
    description="Node aggregate: registration, consent, opt-out, sessions, health, bans",
)
JOBS = StreamSpec(name="CCN_JOBS", subjects=("ccn.job.>",), description="Job aggregate: lifecycle, leases, retries")
# The crawl allow-list and its review trail: the domain-policy aggregate (ccn_proto.domains)
POLICY = StreamSpec(
    name="CCN_POLICY",
    subjects=("ccn.domain.>",),
    description="Domain-policy aggregate: the crawl allow-list, limits and review trail",
)
# Fetch records (ccn_proto.fetch): every outbound request the fetch proxy made or refused, and
# its domains' breaker changes and limit alerts
FETCH = StreamSpec(
    name="CCN_FETCH",
    subjects=("ccn.fetch.>",),
    description="Fetch records: every fetch allowed or refused, breaker changes, limit alerts",
)
# Crawl campaigns and their frontiers (ccn_proto.crawl): seeds, rules, schedule, and each page's
# crawls (changed, unchanged, failed); see docs/adr/0022-crawl-campaigns.md
CRAWL = StreamSpec(
    name="CCN_CRAWL",
    subjects=("ccn.campaign.>",),
    description="Crawl campaigns: settings, frontier, each crawl's outcome (changed, unchanged, failed)",
)
# The result aggregate of each job (ccn_proto.results, ccn_proto.consensus): the validation
# service's verdicts, the admins' quarantine decisions and consensus between replicas; see
# docs/adr/0024-results-validated-before-jobs-complete.md
RESULTS = StreamSpec(
    name="CCN_RESULTS",
    subjects=("ccn.result.>",),
    description="Result aggregates: verdicts on submitted results, quarantine decisions, receipts",
)
# Consensus groups (ccn_proto.consensus; ADR 0026): a stream of their own, so a reader of every
# group's events (trust, the governance observer) reads them densely, never skipping past the
# verdicts of every job
CONSENSUS = StreamSpec(
    name="CCN_CONSENSUS",
    subjects=("ccn.consensus.>",),
    description="Consensus groups: results compared, replicas asked for, agreement, disagreement",
)
# The dataset aggregates (ccn_proto.datasets): merge proposals, reviews, versions, retractions
DATASETS = StreamSpec(
    name="CCN_DATASETS",
    subjects=("ccn.dataset.>",),
    description="Dataset aggregates: merges with provenance, reviews, published versions, retractions",
)
# Only streams something produces to or consumes are declared. CCN_ADMIN (ARCHITECTURE.md) joins
# when the admin actions that write it land: an unused stream is replicated, stored and watched
# for nothing.
TELEMETRY = StreamSpec(
    name="CCN_TELEMETRY",
    subjects=("ccn.telemetry.>",),
    description="High-volume node telemetry samples (heartbeats); age-limited",
    max_age_s=-1.0,  # resolved from Settings.telemetry_max_age_s
)

# Events a projection or reactor could not process (ccn.deadletter.<id>.<event>): where each is,
# why it failed, and its replays. See docs/adr/0012-dead-letters.md.
DEADLETTER = StreamSpec(
    name="CCN_DEADLETTER",
    subjects=("ccn.deadletter.>",),
    description="Events a projection or reactor could not process, and their replays",
)

STREAMS: tuple[StreamSpec, ...] = (
    NODES,
    JOBS,
    POLICY,
    FETCH,
    CRAWL,
    RESULTS,
    CONSENSUS,
    DATASETS,
    TELEMETRY,
    DEADLETTER,
)


class KeyValueSpec(msgspec.Struct, frozen=True, kw_only=True):
    bucket: str
    description: str
    ttl_s: float = 0.0  # a key not written for this long is removed; 0: kept
    in_memory: bool = False  # state that is rebuilt by use, not kept across a server restart
    history: int = 1

    @property
    def stream(self) -> str:
        """The stream JetStream keeps the bucket in."""
        return f"KV_{self.bucket}"

    def key_subject(self, key: str) -> str:
        """The subject of the bucket's stream a key's values are stored under."""
        return f"$KV.{self.bucket}.{key}"


# Which replica owns a role (the scheduler's claims): one key per role, rewritten by its owner
# every third of the TTL, removed by the server when the owner dies. See ccn_core.ownership and
# docs/adr/0016-one-claim-owner-folded-from-the-job-stream.md.
OWNERS = KeyValueSpec(
    bucket="ccn_owners",
    description="The replica that owns each single-owner role (the scheduler's claims); expires with its owner",
    ttl_s=8.0,
)
# Where a single-owner role's reader of a stream has got to, written by the owner only, fenced by
# the key's revision (the registry's governance observer: ccn_registry.observer)
CHECKPOINTS = KeyValueSpec(
    bucket="ccn_checkpoints",
    description="Positions of single-owner stream readers (the governance observer's windows of CCN_JOBS)",
)
# Rate limits (docs/adr/0017-shared-rate-limits-in-nats-kv.md): the GCRA state every edge replica
# decides against, one key per limit and subject, gone once idle; and the limits themselves,
# which admins set at run time and edges watch.
RATE_LIMIT_STATE = KeyValueSpec(
    bucket="ccn_rate_limits",
    description="Rate-limit state shared by the edges (GCRA arrival times); an idle key expires",
    ttl_s=3600.0,  # above any limit's tolerance (ccn_core.rate_limit_config checks it)
    in_memory=True,
)
CONFIG = KeyValueSpec(
    bucket="ccn_config",
    description="Run-time configuration admins set (rate_limits); services watch it",
    history=5,
)
# Bodies the fetch proxy stored for a job (key `<job id>.<sha256>`): the edge serves a fetched
# body only to the node that holds the job it was fetched for (ccn_edge.documents_api)
FETCH_GRANTS = KeyValueSpec(
    bucket="ccn_fetch_grants",
    description="Which job each fetched body was fetched for; the edge serves it to that job's holder",
    ttl_s=24 * 3600.0,
)
# How many fetches each job attempt has made (key `<job id>.<attempt>`), counted with
# compare-and-set so the cap per job (ccn_jobs.crawl.MAX_FETCHES_PER_JOB) holds across proxy replicas
FETCH_COUNTS = KeyValueSpec(
    bucket="ccn_fetch_counts",
    description="Fetches made per job attempt, for the fetch proxy's cap per job",
    ttl_s=24 * 3600.0,
)
KEY_VALUES: tuple[KeyValueSpec, ...] = (OWNERS, CHECKPOINTS, RATE_LIMIT_STATE, CONFIG, FETCH_GRANTS, FETCH_COUNTS)

NODE_READ_MODEL = ConsumerSpec(
    durable="registry_node_read_model",
    stream=NODES.name,
    filter_subjects=("ccn.node.>",),
    description="Projects node events into community_nodes and community_node_sessions",
)
SESSION_LAST_SEEN = ConsumerSpec(
    durable="registry_session_last_seen",
    stream=TELEMETRY.name,
    filter_subjects=("ccn.telemetry.*.heartbeat",),
    description="Projects heartbeats into last_seen_at of nodes and sessions",
)
NODE_TELEMETRY = ConsumerSpec(
    durable="registry_node_telemetry",
    stream=TELEMETRY.name,
    filter_subjects=("ccn.telemetry.*.heartbeat",),
    description="Projects heartbeats that carry metrics into community_node_telemetry",
)
AUDIT_LOG = ConsumerSpec(
    durable="analytics_audit_log",
    stream=NODES.name,
    filter_subjects=("ccn.node.>",),
    description="Projects node events into audit_log",
)
ORCHESTRATOR_LOG = ConsumerSpec(
    durable="analytics_orchestrator_log",
    stream=JOBS.name,
    filter_subjects=("ccn.job.>",),
    description="Projects job lifecycle events into orchestrator_log",
)
ORCHESTRATOR_NODE_LOG = ConsumerSpec(
    durable="analytics_orchestrator_node_log",
    stream=NODES.name,
    filter_subjects=("ccn.node.>",),
    description="Projects node lifecycle events into orchestrator_log",
)

JOB_READ_MODEL = ConsumerSpec(
    durable="scheduler_job_read_model",
    stream=JOBS.name,
    filter_subjects=("ccn.job.>",),
    description="Projects job events into community_jobs and community_job_results",
)
NODE_RELEASE = ConsumerSpec(
    durable="scheduler_node_release",
    stream=NODES.name,
    filter_subjects=("ccn.node.*.opted_out", "ccn.node.*.session_ended"),
    description="Releases the leases of a node that opted out or whose session ended",
)
GOVERNANCE_WORK = ConsumerSpec(
    durable="registry_governance_work",
    stream=JOBS.name,
    # every job event, the kinds it does not count skipped in code by their type header: a filter
    # of several subjects makes the server intersect them with every subject of the stream on
    # each pull (one per job event: the cost grew with the stream, to half of nats-server's CPU
    # at 50,000 jobs)
    filter_subjects=("ccn.job.>",),
    description="The governance observer's read of job outcomes, summed per node into node.work_recorded",
)
CRAWL_OUTCOMES = ConsumerSpec(
    durable="crawler_job_outcomes",
    stream=JOBS.name,
    filter_subjects=tuple(f"ccn.job.*.{name}" for name in ("completed", "dead", "cancelled")),
    description="The crawler's read of finished jobs: a campaign's page crawled (changed, unchanged) or failed",
)
VALIDATION_RESULTS = ConsumerSpec(
    durable="validation_results",
    stream=JOBS.name,
    # results to judge, and jobs that ended unanswered (a replica lost to its group). Several
    # subjects, unlike GOVERNANCE_WORK: reading the whole stream would cost this explicitly
    # acknowledging consumer an ack per event it skips, more than the filter's search costs the
    # server at 50,000 jobs (docs/perf/job-lifecycle.md, round 6)
    filter_subjects=("ccn.job.*.result_submitted", "ccn.job.*.dead", "ccn.job.*.cancelled"),
    description="The validation service's read of submitted results (judged, then settled) and of lost replicas",
)
DOMAIN_READ_MODEL = ConsumerSpec(
    durable="analytics_domain_read_model",
    stream=POLICY.name,
    filter_subjects=("ccn.domain.>",),
    description="Projects domain-policy events into community_domains (the allow-list and robots audit)",
)
AUDIT_POLICY_LOG = ConsumerSpec(
    durable="analytics_audit_policy_log",
    stream=POLICY.name,
    filter_subjects=("ccn.domain.>",),
    description="Projects domain-policy events (admins' allow-list changes) into audit_log",
)
DEAD_LETTERS = ConsumerSpec(
    durable="analytics_dead_letters",
    stream=DEADLETTER.name,
    filter_subjects=("ccn.deadletter.>",),
    description="Projects dead letters and their replays into dead_letters",
)
ORCHESTRATOR_DEADLETTER_LOG = ConsumerSpec(
    durable="analytics_orchestrator_deadletter_log",
    stream=DEADLETTER.name,
    filter_subjects=("ccn.deadletter.>",),
    description="Projects dead letters and their replays into orchestrator_log",
)
# Crawl analytics (CC-65): the fetch records folded per domain, and the breaker changes and
# limit alerts as steps of the orchestrator log
CRAWL_DOMAIN_STATS = ConsumerSpec(
    durable="analytics_crawl_domain_stats",
    stream=FETCH.name,
    filter_subjects=("ccn.fetch.>",),
    description="Projects fetch records into crawl_domain_stats (per-domain crawl analytics)",
)
ORCHESTRATOR_FETCH_LOG = ConsumerSpec(
    durable="analytics_orchestrator_fetch_log",
    stream=FETCH.name,
    filter_subjects=("ccn.fetch.*.breaker_changed", "ccn.fetch.*.limit_alert"),
    description="Projects domain breaker changes and limit alerts into orchestrator_log",
)
# Quarantine (ADR 0024): rejected results and the admins' decisions on them, as a read model
# and in the audit trail; and the nodes whose results disagreed with a consensus, for governance
# Readers of a few kinds of a stream's events filter every event and skip the others in code: a
# consumer whose filter matches rarely makes the server search the stream for its next message
# on every pull, a cost that grows with the stream (docs/perf)
QUARANTINE_READ_MODEL = ConsumerSpec(
    durable="analytics_quarantine_read_model",
    stream=RESULTS.name,
    filter_subjects=("ccn.result.>",),
    description="Projects rejected results and admins' releases and discards into quarantined_results",
)
AUDIT_RESULTS_LOG = ConsumerSpec(
    durable="analytics_audit_results_log",
    stream=RESULTS.name,
    filter_subjects=("ccn.result.>",),
    description="Projects admins' quarantine decisions (release, discard) into audit_log",
)
GOVERNANCE_DISAGREEMENTS = ConsumerSpec(
    durable="registry_governance_disagreements",
    stream=CONSENSUS.name,
    filter_subjects=("ccn.consensus.>",),
    description="The governance observer's read of consensus disagreements, summed per node into node.work_recorded",
)

# The merge service's read of final results (job.completed: validated, agreed) that carry funder
# or opportunity records: each becomes a merge proposal on the dataset aggregate (ccn_merge)
MERGE_PROPOSALS = ConsumerSpec(
    durable="merge_job_results",
    stream=JOBS.name,
    filter_subjects=("ccn.job.*.completed",),
    description="The merge service's read of final job results: records become merge proposals",
)
# The dataset decisions people make or answer for (reviews, publications, retractions) in audit_log;
# merges themselves are the results' provenance, not acts to audit
AUDIT_DATASET_LOG = ConsumerSpec(
    durable="analytics_audit_dataset_log",
    stream=DATASETS.name,
    filter_subjects=tuple(
        f"ccn.dataset.*.{name}"
        for name in ("review_approved", "review_rejected", "version_published", "node_retracted")
    ),
    description="Projects dataset review decisions, publications and retractions into audit_log",
)

CONSUMERS: tuple[ConsumerSpec, ...] = (
    NODE_READ_MODEL,
    SESSION_LAST_SEEN,
    NODE_TELEMETRY,
    AUDIT_LOG,
    ORCHESTRATOR_LOG,
    ORCHESTRATOR_NODE_LOG,
    JOB_READ_MODEL,
    NODE_RELEASE,
    GOVERNANCE_WORK,
    CRAWL_OUTCOMES,
    VALIDATION_RESULTS,
    DEAD_LETTERS,
    ORCHESTRATOR_DEADLETTER_LOG,
    CRAWL_DOMAIN_STATS,
    ORCHESTRATOR_FETCH_LOG,
    DOMAIN_READ_MODEL,
    AUDIT_POLICY_LOG,
    QUARANTINE_READ_MODEL,
    AUDIT_RESULTS_LOG,
    GOVERNANCE_DISAGREEMENTS,
    MERGE_PROPOSALS,
    AUDIT_DATASET_LOG,
)


def stream_for_subject(subject: str) -> StreamSpec:
    aggregate = subject.split(".", 2)[1]
    for spec in STREAMS:
        if any(pattern.split(".")[1] == aggregate for pattern in spec.subjects):
            return spec
    raise ValueError(f"no stream holds {subject!r}")


def stream_config(spec: StreamSpec, settings: Settings) -> StreamConfig:
    max_age = settings.telemetry_max_age_s if spec.max_age_s < 0 else spec.max_age_s
    return StreamConfig(
        name=spec.name,
        description=spec.description,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        max_age=max_age or None,
        discard=DiscardPolicy.OLD,
        duplicate_window=settings.duplicate_window_s,
        allow_direct=True,  # aggregate loads read by subject with batched direct gets
        allow_atomic=True,  # a decision of several events is committed whole or not at all
        # a history's events are not deleted nor purged; an age-limited stream's are samples
        deny_delete=max_age == 0,
        deny_purge=max_age == 0,
    )


async def ensure_streams(js: JetStreamContext, settings: Settings) -> list[str]:
    """Create or update every stream; returns the names created. Safe to run from many replicas."""
    created: list[str] = []
    for spec in STREAMS:
        config = stream_config(spec, settings)
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(config)
            created.append(spec.name)
        else:
            await js.update_stream(config)
    for kv in KEY_VALUES:
        try:
            await js.key_value(kv.bucket)
        except BucketNotFoundError:
            await js.create_key_value(
                KeyValueConfig(
                    bucket=kv.bucket,
                    description=kv.description,
                    history=kv.history,
                    ttl=kv.ttl_s or None,
                    storage=StorageType.MEMORY if kv.in_memory else StorageType.FILE,
                    replicas=settings.stream_replicas,
                )
            )
            created.append(kv.stream)
    try:
        await js.stream_info(f"OBJ_{BODY_BUCKET}")
    except NotFoundError:
        await open_body_store(js, create=True, replicas=settings.stream_replicas)
        created.append(f"OBJ_{BODY_BUCKET}")
    return created


# a topology apply takes a few round trips per stream; a holder that has not finished in this
# long died, and the lock's TTL lets the next one in
TOPOLOGY_LOCK_TTL_S = 120.0


async def apply_topology(js: JetStreamContext, settings: Settings, *, wait_s: float = 60.0) -> list[str]:
    """`ensure_streams` under the topology lock, so two applies (two Jobs of overlapping rollouts,
    a Job and a `ccn up`) never update one stream at once; returns the names created."""
    async with held_lock(js, "topology", wait_s=wait_s, ttl_s=TOPOLOGY_LOCK_TTL_S, replicas=settings.stream_replicas):
        return await ensure_streams(js, settings)


async def missing_topology(
    js: JetStreamContext,
    streams: tuple[StreamSpec, ...] = STREAMS,
    key_values: tuple[KeyValueSpec, ...] = KEY_VALUES,
) -> list[str]:
    """What of the declared topology the server lacks (streams, key-value buckets, the object
    store of document bodies), each named as an operator would look for it ("stream CCN_JOBS
    (ccn.job.>)", "key-value bucket ccn_owners"); empty when all is there."""
    missing: list[str] = []
    for spec in streams:
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            missing.append(f"stream {spec.name} ({', '.join(spec.subjects)})")
    for kv in key_values:
        try:
            await js.stream_info(kv.stream)
        except NotFoundError:
            missing.append(f"key-value bucket {kv.bucket}")
    try:
        await js.stream_info(f"OBJ_{BODY_BUCKET}")
    except NotFoundError:
        missing.append(f"object store {BODY_BUCKET}")
    return missing


class TopologyMissing(RuntimeError):
    """The server lacks streams or buckets a service needs: `ccn topology apply` has not run."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            f"NATS lacks {'; '.join(missing)}: apply the topology first "
            "(`ccn topology apply`; in Kubernetes the ccn-topology Job)"
        )


async def require_topology(js: JetStreamContext) -> None:
    missing = await missing_topology(js)
    if missing:
        raise TopologyMissing(missing)
