-- Results are validated before jobs complete (issue #17, ADR 0024): a node's result is recorded
-- as job.result_submitted, and the job waits in status 'validating' for the validation
-- service's verdict: job.completed, or job.result_rejected (retry_wait, the attempt counted).

ALTER TABLE community_jobs DROP CONSTRAINT community_jobs_status_check;
ALTER TABLE community_jobs ADD CONSTRAINT community_jobs_status_check
    CHECK (status IN ('queued', 'claimed', 'validating', 'retry_wait', 'completed', 'dead', 'cancelled'));

COMMENT ON COLUMN community_jobs.status IS 'queued (claimable: new, or released by its holder unworked), claimed (a node holds a lease), validating (its result is in, awaiting the validation service''s verdict), retry_wait (failed, abandoned or its result rejected; claimable again from retry_at), completed (a validated result is its answer), dead (no retries left), cancelled.';
COMMENT ON TABLE community_job_results IS 'The answer of each completed job: the validated result (or one an admin released from quarantine), with its node, attempt and checksum. Results awaiting or refused a verdict are on the result aggregate (CCN_RESULTS), not here.';
