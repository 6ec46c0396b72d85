"""The scheduler's projection: job events → community_jobs and community_job_results."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ccn_core.db import Connection
from ccn_core.eventstore import StoredEvent
from ccn_core.projection import Statement, execute_per_key
from ccn_core.topology import JOB_READ_MODEL, ConsumerSpec
from ccn_proto.envelope import Envelope
from ccn_proto.jobs import (
    JobAbandoned,
    JobCancelled,
    JobClaimed,
    JobCompleted,
    JobCreated,
    JobDead,
    JobEvent,
    JobFailed,
    JobReleased,
    LeaseRenewed,
)

_decode = msgspec.json.Decoder(Envelope[JobEvent]).decode
_json = msgspec.json.encode

_INSERT_JOB = """
INSERT INTO community_jobs (job_id, job_type, payload_json, status, priority, max_retries, lease_s, batch_id,
                            dataset_source, dataset_version, created_at, updated_at, correlation_id)
VALUES ($1, $2, $3::jsonb, 'queued', $4, $5, $6, $7, $8, $9, $10, $10, $11)"""
_CLAIMED = """
UPDATE community_jobs SET status = 'claimed', claimed_by_node_id = $2, claimed_at = $3, lease_expires_at = $4,
                          attempt = $5, claimed_by_replica = $6, retry_at = NULL, updated_at = $3
WHERE job_id = $1"""
_RENEWED = "UPDATE community_jobs SET lease_expires_at = $2, updated_at = $3 WHERE job_id = $1"
_COMPLETED = """
UPDATE community_jobs SET status = 'completed', lease_expires_at = NULL, finished_at = $2, updated_at = $2
WHERE job_id = $1"""
_INSERT_RESULT = """
INSERT INTO community_job_results (job_id, node_id, attempt, result_json, result_checksum, submitted_at,
                                   correlation_id)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)"""
# handed back unworked: queued again, and the attempt it was on is not counted
_RELEASED = """
UPDATE community_jobs SET status = 'queued', lease_expires_at = NULL, retry_at = NULL, attempt = $2, updated_at = $3
WHERE job_id = $1"""
_RETRY_WAIT = """
UPDATE community_jobs SET status = 'retry_wait', lease_expires_at = NULL, retry_count = retry_count + 1,
                          last_retry_at = $2, retry_at = $3, last_error = $4, updated_at = $2
WHERE job_id = $1"""
_DEAD = """
UPDATE community_jobs SET status = 'dead', lease_expires_at = NULL, retry_at = NULL, last_error = $3,
                          finished_at = $2, updated_at = $2
WHERE job_id = $1"""
_CANCELLED = """
UPDATE community_jobs SET status = 'cancelled', lease_expires_at = NULL, retry_at = NULL,
                          last_error = COALESCE($3, last_error), finished_at = $2, updated_at = $2
WHERE job_id = $1"""


def job_statements(envelope: Envelope[JobEvent]) -> list[Statement]:
    at = envelope.occurred_at
    job = envelope.aggregate_id
    match envelope.data:
        case JobCreated() as e:
            return [
                (
                    _INSERT_JOB,
                    (
                        job,
                        e.job_type,
                        _json(e.payload).decode(),
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
        case JobCompleted() as e:
            return [
                (_COMPLETED, (job, at)),
                (
                    _INSERT_RESULT,
                    (job, e.node_id, e.attempt, _json(e.result).decode(), e.checksum, at, envelope.correlation_id),
                ),
            ]
        case JobReleased() as e:
            return [(_RELEASED, (job, e.attempt - 1, at))]
        case JobFailed() | JobAbandoned() as e:
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
        keyed: list[tuple[str, Statement]] = []
        for stored in events:
            envelope = _decode(stored.data)
            keyed.extend((envelope.aggregate_id, statement) for statement in job_statements(envelope))
        await execute_per_key(conn, keyed)
