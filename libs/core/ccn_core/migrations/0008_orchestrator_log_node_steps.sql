-- The orchestrator log (CC-22) becomes a read model of the job *and* node streams: a node's own
-- lifecycle steps join its jobs' steps, so `?node_id=` shows its whole life interleaved. A second
-- projection in the analytics service (durable analytics_orchestrator_node_log, on CCN_NODES)
-- writes them beside the job projection's rows (analytics_orchestrator_log, on CCN_JOBS); each
-- has its own checkpoint, and rows stay keyed by (event_id, step) and unique per (stream,
-- stream_seq, step), so the streams never collide. A rebuild empties the table and replays both.
--
--   node.registered       -> node_registered
--   node.consent_recorded -> node_consent_recorded
--   node.session_started  -> node_session_started
--   node.session_ended    -> node_session_ended
--   node.opted_out        -> node_opted_out (the sessions it ended are in details)
-- Node rows have job_id NULL. No table changes: job_id was nullable from the start.

COMMENT ON TABLE orchestrator_log IS
  'Orchestrator log (CC-22): one row per lifecycle step of a job (job_created, job_claimed, job_released, job_result_submitted, job_completed, job_failed, job_retried, job_abandoned, job_reassigned, job_cancelled, job_dead) or of a node (node_registered, node_consent_recorded, node_session_started, node_session_ended, node_opted_out), with the job, node, handling replica, correlation and causation. A projection of CCN_JOBS and CCN_NODES (analytics service, one durable consumer per stream): never written by a command handler; rebuilt by replay of both.';
COMMENT ON COLUMN orchestrator_log.stream IS 'JetStream stream holding the event: CCN_JOBS for job steps, CCN_NODES for node steps.';
COMMENT ON COLUMN orchestrator_log.event IS 'Lifecycle step. A job''s: job_created, job_claimed, job_released (handed back unworked; the next claim has the same attempt), job_reassigned, job_result_submitted, job_completed, job_failed, job_abandoned, job_retried, job_dead or job_cancelled. A node''s: node_registered, node_consent_recorded, node_session_started, node_session_ended or node_opted_out.';
COMMENT ON COLUMN orchestrator_log.event_type IS 'Type of the stream event that recorded the step (job.created, job.claimed, node.registered, ...).';
COMMENT ON COLUMN orchestrator_log.job_id IS 'The job (aggregate id of ccn.job.<id>.<event>); NULL for a node''s own step.';
COMMENT ON COLUMN orchestrator_log.node_id IS 'The node the step concerns: the claimer, the submitter, the node that failed, released or lost the job, or the node whose own step it is; NULL when no node is involved (created, cancelled, dead, retried).';
COMMENT ON COLUMN orchestrator_log.attempt IS 'Attempt number a job step belongs to (1 for the first claim); for job_dead, the attempts made; NULL for job_created, job_cancelled and node steps.';
COMMENT ON COLUMN orchestrator_log.details IS 'Bounded facts for triage: job type, priority, batch and dataset of a creation; lease end of a claim; result checksum; reason and retry time of a failure, release or abandonment; a node''s consent version, session id, user agent and node version, and why a session ended or the node opted out. Never payloads, results, token or IP hashes, or secrets.';
