-- Cold storage for finished jobs (plan item CC-32). The scheduler's archiver (one leader among
-- the replicas) moves a job that completed, died or was cancelled more than the retention
-- (Settings.job_retention_s, CCN_JOB_RETENTION_S) ago out of community_jobs, with its
-- community_job_results row, into these tables: one transaction per bounded batch.
--
-- No event is deleted: CCN_JOBS stays the truth and GET /jobs/{id} reads the history, so an
-- archived job is still fully visible. These tables are not part of the job projection: a
-- rebuild empties only the hot tables, replay brings archived jobs back into them, and the
-- archiver moves them out again. Archiving is idempotent (ON CONFLICT DO NOTHING): the row
-- archived first is kept, with its first archived_at.
--
-- Columns repeat community_jobs and community_job_results; a migration adding a column there
-- adds it here too, and to the archiver's column list.

CREATE TABLE community_jobs_archive (
    job_id uuid PRIMARY KEY,
    job_type text NOT NULL,
    payload_json jsonb NOT NULL,
    status text NOT NULL CHECK (status IN ('completed', 'dead', 'cancelled')),
    priority integer NOT NULL,
    claimed_by_node_id text,
    claimed_at timestamptz,
    lease_expires_at timestamptz,
    attempt integer NOT NULL,
    retry_count integer NOT NULL,
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
    finished_at timestamptz NOT NULL,
    correlation_id text NOT NULL,
    archived_at timestamptz NOT NULL,
    archived_by text NOT NULL
);
CREATE INDEX community_jobs_archive_finished ON community_jobs_archive (finished_at);
CREATE INDEX community_jobs_archive_batch ON community_jobs_archive (batch_id) WHERE batch_id IS NOT NULL;
COMMENT ON TABLE community_jobs_archive IS
  'Finished jobs moved out of community_jobs after the retention (CC-32), one row per job, written only by the scheduler''s archiver. The events stay in CCN_JOBS.';
COMMENT ON COLUMN community_jobs_archive.job_id IS 'Job aggregate id, as in community_jobs.';
COMMENT ON COLUMN community_jobs_archive.job_type IS 'Job type (a module of libs/jobs).';
COMMENT ON COLUMN community_jobs_archive.payload_json IS 'The job input, as created.';
COMMENT ON COLUMN community_jobs_archive.status IS 'How the job finished: completed, dead (no retries left) or cancelled.';
COMMENT ON COLUMN community_jobs_archive.priority IS 'Priority given at creation (-100..100, higher first).';
COMMENT ON COLUMN community_jobs_archive.claimed_by_node_id IS 'Public id of the last node that held the job; NULL if none ever did.';
COMMENT ON COLUMN community_jobs_archive.claimed_at IS 'When the last claim was made.';
COMMENT ON COLUMN community_jobs_archive.lease_expires_at IS 'Always NULL for a finished job; kept so the columns match community_jobs.';
COMMENT ON COLUMN community_jobs_archive.attempt IS 'Number of claims made (1 for a job that ran once).';
COMMENT ON COLUMN community_jobs_archive.retry_count IS 'Number of failed or abandoned attempts (CC-30).';
COMMENT ON COLUMN community_jobs_archive.max_retries IS 'Attempts allowed after the first (CC-30).';
COMMENT ON COLUMN community_jobs_archive.last_retry_at IS 'When the last failure or abandonment sent the job back to wait for a retry.';
COMMENT ON COLUMN community_jobs_archive.retry_at IS 'Always NULL for a finished job; kept so the columns match community_jobs.';
COMMENT ON COLUMN community_jobs_archive.lease_s IS 'Lease length in seconds granted on each claim and renewal.';
COMMENT ON COLUMN community_jobs_archive.last_error IS 'Reason given with the last failure, abandonment, death or cancellation.';
COMMENT ON COLUMN community_jobs_archive.batch_id IS 'Batch the job was created in (CC-40); NULL for a single job.';
COMMENT ON COLUMN community_jobs_archive.dataset_source IS 'Dataset the job''s input came from (CC-40).';
COMMENT ON COLUMN community_jobs_archive.dataset_version IS 'Version of that dataset (CC-40).';
COMMENT ON COLUMN community_jobs_archive.claimed_by_replica IS 'Scheduler replica that handed out the last claim.';
COMMENT ON COLUMN community_jobs_archive.created_at IS 'occurred_at of job.created.';
COMMENT ON COLUMN community_jobs_archive.updated_at IS 'occurred_at of the last job event applied (the finishing one).';
COMMENT ON COLUMN community_jobs_archive.finished_at IS 'When the job completed, died or was cancelled; the retention counts from here.';
COMMENT ON COLUMN community_jobs_archive.correlation_id IS 'Correlation id of the request that created the job: pulls its whole life across services.';
COMMENT ON COLUMN community_jobs_archive.archived_at IS 'When the archiver first moved the job here (its clock); a re-archive after a replay keeps it.';
COMMENT ON COLUMN community_jobs_archive.archived_by IS 'Scheduler replica whose archiver moved the job here first (for audits).';

CREATE TABLE community_job_results_archive (
    job_id uuid PRIMARY KEY REFERENCES community_jobs_archive (job_id),
    node_id text NOT NULL,
    attempt integer NOT NULL,
    result_json jsonb NOT NULL,
    result_checksum text NOT NULL CHECK (result_checksum ~ '^[0-9a-f]{64}$'),
    submitted_at timestamptz NOT NULL,
    correlation_id text NOT NULL,
    archived_at timestamptz NOT NULL
);
CREATE INDEX community_job_results_archive_node ON community_job_results_archive (node_id);
COMMENT ON TABLE community_job_results_archive IS
  'Accepted results of archived jobs (CC-32), moved out of community_job_results in the same transaction as their job row. The job.completed events stay in CCN_JOBS.';
COMMENT ON COLUMN community_job_results_archive.job_id IS 'The archived job the result completed.';
COMMENT ON COLUMN community_job_results_archive.node_id IS 'Public id of the node that produced it (the lease holder).';
COMMENT ON COLUMN community_job_results_archive.attempt IS 'Which attempt of the job produced it.';
COMMENT ON COLUMN community_job_results_archive.result_json IS 'The result as submitted.';
COMMENT ON COLUMN community_job_results_archive.result_checksum IS 'SHA-256 (hex) of the result''s canonical bytes, as the scheduler recomputed it before accepting the result.';
COMMENT ON COLUMN community_job_results_archive.submitted_at IS 'When the result was accepted (occurred_at of job.completed).';
COMMENT ON COLUMN community_job_results_archive.correlation_id IS 'Correlation id of the submission.';
COMMENT ON COLUMN community_job_results_archive.archived_at IS 'When the archiver first moved the result here, with its job.';

-- the archiver's scan: finished jobs, oldest first
CREATE INDEX community_jobs_finished ON community_jobs (finished_at) WHERE finished_at IS NOT NULL;
