-- Read models of the job aggregate (stream CCN_JOBS), written only by the scheduler's
-- projection (durable scheduler_job_read_model) and rebuilt by replay. Plan items CC-03
-- (community_jobs), CC-04 (community_job_results), CC-30 (retry fields), CC-40 (batch fields).
-- The event history is the truth: a command never reads these tables to decide. The scheduler's
-- lease keeper scans lease_expires_at here to find leases to expire, and the job decider
-- re-checks every expiry against the history before it abandons anything.
--
-- No foreign key to community_nodes: that table is another projection of another stream, so a
-- job may be claimed by a node whose row is not projected yet.

CREATE TABLE community_jobs (
    job_id uuid PRIMARY KEY,
    job_type text NOT NULL,
    payload_json jsonb NOT NULL,
    status text NOT NULL CHECK (status IN ('queued', 'claimed', 'retry_wait', 'completed', 'dead', 'cancelled')),
    priority integer NOT NULL DEFAULT 0,
    claimed_by_node_id text,
    claimed_at timestamptz,
    lease_expires_at timestamptz,
    attempt integer NOT NULL DEFAULT 0,
    retry_count integer NOT NULL DEFAULT 0,
    max_retries integer NOT NULL,
    last_retry_at timestamptz,
    retry_at timestamptz,
    lease_s double precision NOT NULL,
    last_error text,
    batch_id text,
    dataset_source text,
    dataset_version text,
    claimed_by_replica text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    finished_at timestamptz,
    correlation_id text NOT NULL
);
CREATE INDEX community_jobs_status_type ON community_jobs (status, job_type);
CREATE INDEX community_jobs_lease ON community_jobs (lease_expires_at) WHERE status = 'claimed';
CREATE INDEX community_jobs_holder ON community_jobs (claimed_by_node_id) WHERE status = 'claimed';
CREATE INDEX community_jobs_batch ON community_jobs (batch_id) WHERE batch_id IS NOT NULL;
COMMENT ON TABLE community_jobs IS
  'One row per job (CC-03). A projection of CCN_JOBS: never written by a command handler; dropped and rebuilt by replay.';
COMMENT ON COLUMN community_jobs.job_id IS 'Job aggregate id (UUID; derived from the Idempotency-Key or batch item when given, so retries find the same job).';
COMMENT ON COLUMN community_jobs.job_type IS 'Job type (a module of libs/jobs, e.g. extract_text); selects the payload schema and the nodes that can run it.';
COMMENT ON COLUMN community_jobs.payload_json IS 'The job input, validated against the job type''s payload schema when the job was created.';
COMMENT ON COLUMN community_jobs.status IS 'queued (claimable), claimed (a node holds a lease), retry_wait (failed or abandoned, claimable again from retry_at), completed, dead (no retries left), cancelled.';
COMMENT ON COLUMN community_jobs.priority IS 'Priority given at creation (-100..100, higher first).';
COMMENT ON COLUMN community_jobs.claimed_by_node_id IS 'Public id of the node holding the job while status = claimed; the last holder once finished.';
COMMENT ON COLUMN community_jobs.claimed_at IS 'When the current or last claim was made.';
COMMENT ON COLUMN community_jobs.lease_expires_at IS 'When the holder''s lease runs out unless renewed; the lease keeper abandons the job after it.';
COMMENT ON COLUMN community_jobs.attempt IS 'Number of claims so far (1 for the first attempt).';
COMMENT ON COLUMN community_jobs.retry_count IS 'Number of failed or abandoned attempts (CC-30).';
COMMENT ON COLUMN community_jobs.max_retries IS 'Attempts allowed after the first before the job is dead (CC-30).';
COMMENT ON COLUMN community_jobs.last_retry_at IS 'When the last failure or abandonment sent the job back to wait for a retry (CC-30).';
COMMENT ON COLUMN community_jobs.retry_at IS 'When the job becomes claimable again while status = retry_wait (exponential backoff with full jitter).';
COMMENT ON COLUMN community_jobs.lease_s IS 'Lease length in seconds granted on each claim and renewal.';
COMMENT ON COLUMN community_jobs.last_error IS 'Reason given with the last failure, abandonment, death or cancellation.';
COMMENT ON COLUMN community_jobs.batch_id IS 'Batch the job was created in (CC-40); NULL for a single job.';
COMMENT ON COLUMN community_jobs.dataset_source IS 'Dataset the job''s input came from (CC-40), for tracing results back.';
COMMENT ON COLUMN community_jobs.dataset_version IS 'Version of that dataset (CC-40).';
COMMENT ON COLUMN community_jobs.claimed_by_replica IS 'Scheduler replica that handed out the current or last claim.';
COMMENT ON COLUMN community_jobs.created_at IS 'occurred_at of job.created.';
COMMENT ON COLUMN community_jobs.updated_at IS 'occurred_at of the last job event applied.';
COMMENT ON COLUMN community_jobs.finished_at IS 'When the job completed, died or was cancelled; NULL while it may still run.';
COMMENT ON COLUMN community_jobs.correlation_id IS 'Correlation id of the request that created the job: pulls its whole life across services.';

CREATE TABLE community_job_results (
    job_id uuid PRIMARY KEY REFERENCES community_jobs (job_id),
    node_id text NOT NULL,
    attempt integer NOT NULL,
    result_json jsonb NOT NULL,
    result_checksum text NOT NULL CHECK (result_checksum ~ '^[0-9a-f]{64}$'),
    submitted_at timestamptz NOT NULL,
    correlation_id text NOT NULL
);
CREATE INDEX community_job_results_node ON community_job_results (node_id);
COMMENT ON TABLE community_job_results IS
  'The accepted result of each completed job (CC-04): at most one per job. A projection of job.completed events.';
COMMENT ON COLUMN community_job_results.job_id IS 'The job the result completes.';
COMMENT ON COLUMN community_job_results.node_id IS 'Public id of the node that produced it (the lease holder).';
COMMENT ON COLUMN community_job_results.attempt IS 'Which attempt of the job produced it.';
COMMENT ON COLUMN community_job_results.result_json IS 'The result as submitted.';
COMMENT ON COLUMN community_job_results.result_checksum IS 'SHA-256 (hex) of the result''s canonical bytes (sorted keys, no whitespace, UTF-8), recomputed by the scheduler before it accepted the result.';
COMMENT ON COLUMN community_job_results.submitted_at IS 'When the result was accepted (occurred_at of job.completed).';
COMMENT ON COLUMN community_job_results.correlation_id IS 'Correlation id of the submission.';
