-- job.released (issue #4): the holder hands a job back unworked, e.g. an offer the edge claimed
-- for a node that left before it reached it. The job is queued again at once and the attempt it
-- was on is not counted: the next claim has the same attempt number, and max_retries counts only
-- attempts a node worked on. No table changes; the comments say what the new event does to the
-- read models (community_jobs: status 'queued', attempt back by one; orchestrator_log: a
-- job_released step).

COMMENT ON TABLE orchestrator_log IS
  'Orchestrator log (CC-22): one row per job lifecycle step (job_created, job_claimed, job_released, job_result_submitted, job_completed, job_failed, job_retried, job_abandoned, job_reassigned, job_cancelled, job_dead), with the job, node, handling replica, correlation and causation. A projection of CCN_JOBS (analytics service): never written by a command handler; rebuilt by replay.';
COMMENT ON COLUMN orchestrator_log.event IS 'Lifecycle step: job_created, job_claimed, job_released (handed back unworked; the next claim has the same attempt), job_reassigned, job_result_submitted, job_completed, job_failed, job_abandoned, job_retried, job_dead or job_cancelled.';
COMMENT ON COLUMN community_jobs.status IS 'queued (claimable: new, or released by its holder unworked), claimed (a node holds a lease), retry_wait (failed or abandoned, claimable again from retry_at), completed, dead (no retries left), cancelled.';
COMMENT ON COLUMN community_jobs.attempt IS 'Number of attempts counted so far (1 for the first claim); a release hands its attempt back, so the next claim has the same number.';
COMMENT ON COLUMN community_jobs_archive.attempt IS 'Number of attempts counted (1 for a job that ran once); a released attempt is not counted.';
