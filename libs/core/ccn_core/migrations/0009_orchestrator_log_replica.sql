-- The events of a node's request now name the scheduler replica that decided them, as
-- job.claimed always did: job.completed, job.failed, job.released, and job.dead when a failure
-- decides it (an optional `replica` field; events written before decode without one). So
-- orchestrator_log.replica is filled for those steps too. No table changes.

COMMENT ON COLUMN orchestrator_log.replica IS 'The scheduler replica that decided the step: the one named by the event (job.claimed, job.completed, job.failed, job.released, and job.dead after a failure) or the acting replica of service-made events (creation, cancellation, lease expiry, a departed node''s release). NULL for node steps (the registry''s events name the node as actor) and for job events written before they named their replica.';
