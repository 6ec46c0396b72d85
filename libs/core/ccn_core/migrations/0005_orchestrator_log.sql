-- The orchestrator log (plan item CC-22): every step of every job's life, one row per lifecycle
-- event, for triage by job, node or correlation id. A read model of the job stream (CCN_JOBS),
-- written only by the analytics service's orchestrator projection (durable
-- analytics_orchestrator_log) and rebuilt by replay; no service writes it directly.
--
-- A stream event may record more than one lifecycle step, so a row is keyed by (event_id, step):
--   job.created    -> job_created
--   job.claimed    -> job_claimed (first attempt) or job_reassigned (a later attempt: the job
--                     comes back to a node after a failure or an abandonment)
--   job.completed  -> job_result_submitted, then job_completed (the scheduler accepts the result
--                     and completes the job in one decision)
--   job.failed     -> job_failed, then job_retried when another attempt is scheduled
--   job.abandoned  -> job_abandoned, then job_retried when another attempt is scheduled
--   job.dead       -> job_dead;  job.cancelled -> job_cancelled
-- Lease renewals (job.lease_renewed, one per heartbeat per held job) are not lifecycle steps and
-- are left out; community_jobs.lease_expires_at shows the latest. node_rate_limited joins when
-- rate limits are events.
-- Payloads, results, idempotency-key hashes and request fingerprints never reach `details`.

CREATE TABLE orchestrator_log (
    event_id uuid NOT NULL,
    step smallint NOT NULL CHECK (step >= 0),
    stream text NOT NULL,
    stream_seq bigint NOT NULL CHECK (stream_seq > 0),
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    event text NOT NULL CHECK (event ~ '^[a-z][a-z0-9_]{0,63}$'),
    event_type text NOT NULL,
    job_id text,
    node_id text,
    replica text,
    actor_kind text NOT NULL,
    actor_id text NOT NULL,
    correlation_id text NOT NULL,
    causation_id text,
    attempt integer,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (event_id, step),
    -- one row per stream position and step: with occurred_at it totally orders the log for paging
    UNIQUE (stream, stream_seq, step)
);
-- One index per filter of GET /admin/orchestrator-log, each ending in the page order.
CREATE INDEX orchestrator_log_job ON orchestrator_log (job_id, occurred_at, stream_seq) WHERE job_id IS NOT NULL;
CREATE INDEX orchestrator_log_node ON orchestrator_log (node_id, occurred_at, stream_seq) WHERE node_id IS NOT NULL;
CREATE INDEX orchestrator_log_correlation ON orchestrator_log (correlation_id, occurred_at, stream_seq);
CREATE INDEX orchestrator_log_event ON orchestrator_log (event, occurred_at, stream_seq);
CREATE INDEX orchestrator_log_occurred ON orchestrator_log (occurred_at, stream_seq, stream, step);

COMMENT ON TABLE orchestrator_log IS
  'Orchestrator log (CC-22): one row per job lifecycle step (job_created, job_claimed, job_result_submitted, job_completed, job_failed, job_retried, job_abandoned, job_reassigned, job_cancelled, job_dead), with the job, node, handling replica, correlation and causation. A projection of CCN_JOBS (analytics service): never written by a command handler; rebuilt by replay.';
COMMENT ON COLUMN orchestrator_log.event_id IS 'Envelope event id of the stream event that recorded this step; the same id as the event in the stream.';
COMMENT ON COLUMN orchestrator_log.step IS 'Position of this lifecycle step among those one stream event records (0 first; job.completed records job_result_submitted 0 and job_completed 1).';
COMMENT ON COLUMN orchestrator_log.stream IS 'JetStream stream holding the event (CCN_JOBS).';
COMMENT ON COLUMN orchestrator_log.stream_seq IS 'Sequence of the event in that stream; orders events of equal occurred_at.';
COMMENT ON COLUMN orchestrator_log.occurred_at IS 'When the event happened (envelope occurred_at, the deciding scheduler replica''s clock).';
COMMENT ON COLUMN orchestrator_log.recorded_at IS 'When this row was projected; differs from occurred_at by the projection lag and is reset by a rebuild.';
COMMENT ON COLUMN orchestrator_log.event IS 'Lifecycle step: job_created, job_claimed, job_reassigned, job_result_submitted, job_completed, job_failed, job_abandoned, job_retried, job_dead or job_cancelled.';
COMMENT ON COLUMN orchestrator_log.event_type IS 'Type of the stream event that recorded the step (job.created, job.claimed, ...).';
COMMENT ON COLUMN orchestrator_log.job_id IS 'The job (aggregate id of ccn.job.<id>.<event>).';
COMMENT ON COLUMN orchestrator_log.node_id IS 'The node the step concerns: the claimer, the submitter, the node that failed or lost the job; NULL when no node is involved (created, cancelled, dead).';
COMMENT ON COLUMN orchestrator_log.replica IS 'The scheduler replica that decided the step, when the event says: the claiming replica of job.claimed, the acting replica of service-made events (creation, cancellation, lease expiry, release). NULL for steps a node asked for (result, failure), where the actor is the node.';
COMMENT ON COLUMN orchestrator_log.actor_kind IS 'Who acted (envelope actor): node, admin or service.';
COMMENT ON COLUMN orchestrator_log.actor_id IS 'Id of the actor: a node id, an admin id, or a service replica.';
COMMENT ON COLUMN orchestrator_log.correlation_id IS 'Correlation id of the job''s thread (the creating request''s X-Correlation-ID, kept by claims and retries); pulls a job''s whole life.';
COMMENT ON COLUMN orchestrator_log.causation_id IS 'Event id of the event that caused this one (set by reactors, e.g. the node.opted_out that released a job); NULL when a request caused it directly.';
COMMENT ON COLUMN orchestrator_log.attempt IS 'Attempt number the step belongs to (1 for the first claim); for job_dead, the attempts made; NULL for job_created and job_cancelled.';
COMMENT ON COLUMN orchestrator_log.details IS 'Bounded facts for triage: job type, priority, batch and dataset of a creation; lease end of a claim; result checksum; reason and retry time of a failure or abandonment. Never payloads, results or secrets.';
