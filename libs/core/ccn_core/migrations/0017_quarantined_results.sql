-- Results in quarantine (issue #17, ADR 0024): one row per result the validation service
-- rejected (`result.rejected` on CCN_RESULTS), with every reason, and what an admin decided
-- about it (`result.released`: accepted anyway and made the job's answer; `result.discarded`:
-- set aside for good). A read model of CCN_RESULTS, written only by the analytics service's
-- quarantine projection and rebuilt by replay; GET /admin/quarantine and `ccn admin quarantine`
-- read it. The decisions themselves are also in audit_log (aggregate_type 'result').

CREATE TABLE quarantined_results (
    job_id text NOT NULL,
    node_id text NOT NULL,
    attempt integer NOT NULL CHECK (attempt >= 0),
    checksum text NOT NULL,
    job_type text NOT NULL,
    job_type_version text NOT NULL,
    rules_version text NOT NULL,
    reasons jsonb NOT NULL,
    reasons_truncated boolean NOT NULL DEFAULT false,
    rejected_at timestamptz NOT NULL,
    correlation_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('rejected', 'released', 'discarded')),
    decided_by text,
    decision_comment text,
    decided_at timestamptz,
    decision_correlation_id text,
    last_seq bigint NOT NULL CHECK (last_seq > 0),
    PRIMARY KEY (job_id, node_id, attempt, checksum)
);
-- GET /admin/quarantine pages newest first, optionally for one status, node or job type
CREATE INDEX quarantined_results_recent ON quarantined_results (rejected_at DESC, job_id, node_id, attempt, checksum);
CREATE INDEX quarantined_results_status ON quarantined_results (status, rejected_at DESC);
CREATE INDEX quarantined_results_node ON quarantined_results (node_id, rejected_at DESC);
CREATE INDEX quarantined_results_job_type ON quarantined_results (job_type, rejected_at DESC);

COMMENT ON TABLE quarantined_results IS
  'Results the validation service rejected, with their reasons, and the admin''s release or discard. A projection of CCN_RESULTS (analytics service); never written by a command handler; rebuilt by replay.';
COMMENT ON COLUMN quarantined_results.job_id IS 'The job (and result aggregate, ccn.result.<job_id>.*) the result was submitted for.';
COMMENT ON COLUMN quarantined_results.node_id IS 'The node that submitted the result.';
COMMENT ON COLUMN quarantined_results.attempt IS 'The job attempt the result answered.';
COMMENT ON COLUMN quarantined_results.checksum IS 'The checksum the node asserted for the result (a checksum reason says when it was wrong).';
COMMENT ON COLUMN quarantined_results.job_type IS 'The job type the result was judged as.';
COMMENT ON COLUMN quarantined_results.job_type_version IS 'The job type''s version it was judged by; empty for an unknown job type.';
COMMENT ON COLUMN quarantined_results.rules_version IS 'The version of the job type''s validation rules it was judged by; empty for an unknown job type.';
COMMENT ON COLUMN quarantined_results.reasons IS 'Every reason it was rejected: a JSON array of {code, field, message} (ccn_proto.results.Reason).';
COMMENT ON COLUMN quarantined_results.reasons_truncated IS 'More reasons were found than an event carries (ccn_proto.results.MAX_REASONS).';
COMMENT ON COLUMN quarantined_results.rejected_at IS 'When the rejection was recorded (its event''s occurred_at).';
COMMENT ON COLUMN quarantined_results.correlation_id IS 'The rejection''s correlation id: the job''s request chain.';
COMMENT ON COLUMN quarantined_results.status IS 'rejected: in quarantine, undecided; released: an admin accepted it; discarded: an admin set it aside for good.';
COMMENT ON COLUMN quarantined_results.decided_by IS 'The admin who released or discarded it; NULL while undecided.';
COMMENT ON COLUMN quarantined_results.decision_comment IS 'The admin''s comment on the decision (one line).';
COMMENT ON COLUMN quarantined_results.decided_at IS 'When the decision was recorded.';
COMMENT ON COLUMN quarantined_results.decision_correlation_id IS 'The decision''s correlation id: the admin''s request, as in audit_log.';
COMMENT ON COLUMN quarantined_results.last_seq IS 'CCN_RESULTS sequence of the latest event applied to the row.';
