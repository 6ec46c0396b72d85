"""The scheduler's projection: job events → community_jobs and community_job_results."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ccn_core.db import Connection
from ccn_core.eventstore import StoredEvent
from ccn_core.projection import ColumnarSql, Statement, execute_per_key
from ccn_core.topology import JOB_READ_MODEL, ConsumerSpec
from ccn_proto.envelope import Envelope
from ccn_proto.jobs import (
    JobAbandoned,
    JobCancelled,
    JobClaimed,
    JobCompletedBytes,
    JobCreatedBytes,
    JobDead,
    JobEventBytes,
    JobFailed,
    JobReleased,
    JobResultRejected,
    JobResultSetAside,
    JobResultSubmittedBytes,
    LeaseRenewed,
)

_decode = msgspec.json.Decoder(Envelope[JobEventBytes]).decode


def _json_object(raw: msgspec.Raw, what: str) -> msgspec.Raw:
    """The raw JSON, refused unless it is an object (as the event's dict field is). It goes to
    PostgreSQL as bytes (bytea, read back as UTF-8 text): no str is made of it on the way."""
    if not raw or memoryview(raw)[0] != _OPEN_BRACE:
        raise msgspec.ValidationError(f"Expected `object` - at `$.data.{what}`")
    return raw


_OPEN_BRACE = ord("{")


# One statement per (layer, SQL) of a batch: each takes its rows as arrays (ColumnarSql); a
# layer holds at most one statement per job, so each UPDATE's join names a row once.
_INSERT_JOB = ColumnarSql("""
INSERT INTO community_jobs (job_id, job_type, payload_json, status, priority, max_retries, lease_s, batch_id,
                            dataset_source, dataset_version, created_at, updated_at, correlation_id)
SELECT job_id, job_type, convert_from(payload, 'UTF8')::jsonb, 'queued', priority, max_retries, lease_s, batch_id,
       dataset_source, dataset_version, at, at, correlation_id
FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::int[], $5::int[], $6::float8[], $7::text[], $8::text[],
            $9::text[], $10::timestamptz[], $11::text[])
     AS u(job_id, job_type, payload, priority, max_retries, lease_s, batch_id, dataset_source, dataset_version, at,
          correlation_id)""")
_CLAIMED = ColumnarSql("""
UPDATE community_jobs AS j SET status = 'claimed', claimed_by_node_id = u.node_id, claimed_at = u.at,
                               lease_expires_at = u.lease_until, attempt = u.attempt, claimed_by_replica = u.replica,
                               retry_at = NULL, updated_at = u.at
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::text[])
     AS u(job_id, node_id, at, lease_until, attempt, replica)
WHERE j.job_id = u.job_id""")
_RENEWED = ColumnarSql("""
UPDATE community_jobs AS j SET lease_expires_at = u.lease_until, updated_at = u.at
FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS u(job_id, lease_until, at)
WHERE j.job_id = u.job_id""")
_COMPLETED = ColumnarSql("""
UPDATE community_jobs AS j SET status = 'completed', lease_expires_at = NULL, finished_at = u.at, updated_at = u.at
FROM unnest($1::uuid[], $2::timestamptz[]) AS u(job_id, at)
WHERE j.job_id = u.job_id""")
# the result is in: the lease is over, the verdict awaited
_SUBMITTED = ColumnarSql("""
UPDATE community_jobs AS j SET status = 'validating', lease_expires_at = NULL, updated_at = u.at
FROM unnest($1::uuid[], $2::timestamptz[]) AS u(job_id, at)
WHERE j.job_id = u.job_id""")
# a claim and the result right after it, as one row version instead of two: what _CLAIMED and
# _SUBMITTED leave, one after the other
_CLAIMED_AND_SUBMITTED = ColumnarSql("""
UPDATE community_jobs AS j SET status = 'validating', claimed_by_node_id = u.node_id, claimed_at = u.claimed_at,
                               lease_expires_at = NULL, attempt = u.attempt, claimed_by_replica = u.replica,
                               retry_at = NULL, updated_at = u.at
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int[], $5::text[], $6::timestamptz[])
     AS u(job_id, node_id, claimed_at, attempt, replica, at)
WHERE j.job_id = u.job_id""")
_INSERT_RESULT = ColumnarSql("""
INSERT INTO community_job_results (job_id, node_id, attempt, result_json, result_checksum, submitted_at,
                                   correlation_id)
SELECT job_id, node_id, attempt, convert_from(result, 'UTF8')::jsonb, checksum, at, correlation_id
FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bytea[], $5::text[], $6::timestamptz[], $7::text[])
     AS u(job_id, node_id, attempt, result, checksum, at, correlation_id)""")
# handed back unworked: queued again, and the attempt it was on is not counted
_RELEASED = ColumnarSql("""
UPDATE community_jobs AS j SET status = 'queued', lease_expires_at = NULL, retry_at = NULL, attempt = u.attempt,
                               updated_at = u.at
FROM unnest($1::uuid[], $2::int[], $3::timestamptz[]) AS u(job_id, attempt, at)
WHERE j.job_id = u.job_id""")
_RETRY_WAIT = ColumnarSql("""
UPDATE community_jobs AS j SET status = 'retry_wait', lease_expires_at = NULL, retry_count = j.retry_count + 1,
                               last_retry_at = u.at, retry_at = u.retry_at, last_error = u.reason, updated_at = u.at
FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::text[]) AS u(job_id, at, retry_at, reason)
WHERE j.job_id = u.job_id""")
_DEAD = ColumnarSql("""
UPDATE community_jobs AS j SET status = 'dead', lease_expires_at = NULL, retry_at = NULL, last_error = u.reason,
                               finished_at = u.at, updated_at = u.at
FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) AS u(job_id, at, reason)
WHERE j.job_id = u.job_id""")
_CANCELLED = ColumnarSql("""
UPDATE community_jobs AS j SET status = 'cancelled', lease_expires_at = NULL, retry_at = NULL,
                               last_error = COALESCE(u.reason, j.last_error), finished_at = u.at, updated_at = u.at
FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) AS u(job_id, at, reason)
WHERE j.job_id = u.job_id""")


def job_statements(envelope: Envelope[JobEventBytes]) -> list[Statement]:
    at = envelope.occurred_at
    job = envelope.aggregate_id
    match envelope.data:
        case JobCreatedBytes() as e:
            return [
                (
                    _INSERT_JOB,
                    (
                        job,
                        e.job_type,
                        _json_object(e.payload, "payload"),
                        e.priority,
                        e.max_retries,
                        e.lease_s,
                        e.batch_id,
                        e.dataset_source,
                        e.dataset_version,
                        at,
                        envelope.correlation_id,
                    ),
                )
            ]
        case JobClaimed() as e:
            return [(_CLAIMED, (job, e.node_id, at, e.lease_until, e.attempt, e.replica))]
        case LeaseRenewed() as e:
            return [(_RENEWED, (job, e.lease_until, at))]
        case JobResultSubmittedBytes():
            return [(_SUBMITTED, (job, at))]
        case JobCompletedBytes() as e:
            return [
                (_COMPLETED, (job, at)),
                (
                    _INSERT_RESULT,
                    (
                        job,
                        e.node_id,
                        e.attempt,
                        _json_object(e.result, "result"),
                        e.checksum,
                        at,
                        envelope.correlation_id,
                    ),
                ),
            ]
        case JobReleased() | JobResultSetAside() as e:
            # queued again at once with the attempt handed back (a set-aside result is not a failure)
            return [(_RELEASED, (job, e.attempt - 1, at))]
        case JobFailed() | JobAbandoned() | JobResultRejected() as e:
            # with no attempts left, retry_at is None and the job.dead in the same decision follows
            return [(_RETRY_WAIT, (job, at, e.retry_at, e.reason))]
        case JobDead() as e:
            return [(_DEAD, (job, at, e.reason))]
        case JobCancelled() as e:
            return [(_CANCELLED, (job, at, e.reason))]
    raise TypeError(f"unhandled job event {envelope.type}")


class JobReadModel:
    spec: ConsumerSpec = JOB_READ_MODEL
    tables: tuple[str, ...] = ("community_job_results", "community_jobs")

    async def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        # ordered per job only (jobs' rows are disjoint): live batches interleave the steps of
        # many jobs, which in stream order would be a round trip per statement
        per_job: dict[str, list[Statement]] = {}
        for stored in events:
            envelope = _decode(stored.data)
            steps = per_job.setdefault(envelope.aggregate_id, [])
            for statement in job_statements(envelope):
                append_folded(steps, statement)
        await execute_per_key(conn, [(job, statement) for job, steps in per_job.items() for statement in steps])


def append_folded(steps: list[Statement], statement: Statement) -> None:
    """Append a job's next statement; a result that follows its claim in the same batch (a node
    that answers quickly) joins it, so the row is written once for both."""
    if statement[0] is _SUBMITTED and steps and steps[-1][0] is _CLAIMED:
        job, node_id, claimed_at, _, attempt, replica = steps[-1][1]
        steps[-1] = (_CLAIMED_AND_SUBMITTED, (job, node_id, claimed_at, attempt, replica, statement[1][1]))
    else:
        steps.append(statement)
