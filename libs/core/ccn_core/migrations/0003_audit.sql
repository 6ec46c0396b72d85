-- The audit trail: a read model of the event streams, written only by the analytics service's
-- audit projection and rebuilt by replay; no service writes it directly. One row per audited
-- event of any aggregate (node events now; admin actions, bans and reviews from other streams
-- later), so the table names streams and aggregates instead of assuming the node aggregate.
-- Secrets never reach it: token hashes, idempotency-key hashes, request fingerprints and IP
-- hashes are dropped from `details` before the row is written.

CREATE TABLE audit_log (
    event_id uuid PRIMARY KEY,
    stream text NOT NULL,
    stream_seq bigint NOT NULL CHECK (stream_seq > 0),
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    event_type text NOT NULL,
    schema_version integer NOT NULL,
    actor_kind text NOT NULL,
    actor_id text NOT NULL,
    correlation_id text NOT NULL,
    causation_id text,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- one row per stream position: with occurred_at it totally orders the trail for paging
    UNIQUE (stream, stream_seq)
);
-- One index per filter of GET /admin/audit, each ending in occurred_at so results come out in order.
CREATE INDEX audit_log_aggregate ON audit_log (aggregate_id, occurred_at);
CREATE INDEX audit_log_correlation ON audit_log (correlation_id, occurred_at);
CREATE INDEX audit_log_event_type ON audit_log (event_type, occurred_at);
CREATE INDEX audit_log_occurred ON audit_log (occurred_at, stream_seq, stream);

COMMENT ON TABLE audit_log IS
  'Audit trail: who did what, when, and why (correlation and causation), one row per audited event of any stream. A projection of the event streams (analytics service): never written by a command handler; rebuilt by replay.';
COMMENT ON COLUMN audit_log.event_id IS 'Envelope event id (UUIDv7, or v8 when derived from an idempotency key); the same id as the event in the stream.';
COMMENT ON COLUMN audit_log.stream IS 'JetStream stream holding the event (e.g. CCN_NODES).';
COMMENT ON COLUMN audit_log.stream_seq IS 'Sequence of the event in that stream; orders events of equal occurred_at.';
COMMENT ON COLUMN audit_log.occurred_at IS 'When the event happened (envelope occurred_at, the deciding service''s clock).';
COMMENT ON COLUMN audit_log.recorded_at IS 'When this row was projected; differs from occurred_at by the projection lag and is reset by a rebuild.';
COMMENT ON COLUMN audit_log.aggregate_type IS 'Kind of aggregate the event belongs to, from its subject ccn.<aggregate>.<id>.<event> (node, job, dataset, ...).';
COMMENT ON COLUMN audit_log.aggregate_id IS 'Id of that aggregate (for node events, the node public id).';
COMMENT ON COLUMN audit_log.event_type IS 'Event type, <aggregate>.<event> (e.g. node.consent_recorded).';
COMMENT ON COLUMN audit_log.schema_version IS 'Schema version of the event data, for reading details written under an older shape.';
COMMENT ON COLUMN audit_log.actor_kind IS 'Who acted: node, admin or service.';
COMMENT ON COLUMN audit_log.actor_id IS 'Id of the actor: a node id, an admin id, or a service replica.';
COMMENT ON COLUMN audit_log.correlation_id IS 'Correlation id of the request that started the chain (X-Correlation-ID); groups everything one request caused.';
COMMENT ON COLUMN audit_log.causation_id IS 'Event id of the event that caused this one (set by reactors); NULL when a request caused it directly.';
COMMENT ON COLUMN audit_log.details IS 'Event data an auditor needs (consent version, reason, session ids...), with every secret, token hash, idempotency-key hash, request fingerprint and IP hash removed.';
