-- Node telemetry (CC-20): the metrics each heartbeat carried. The facts are telemetry.heartbeat
-- samples on CCN_TELEMETRY, a stream that keeps them for CCN_TELEMETRY_MAX_AGE_S; this table is
-- their read model, written only by the registry's projection (durable registry_node_telemetry),
-- and keeps what the stream keeps: rows older than the stream's age before the newest sample
-- are removed as samples arrive, so the table is bounded like the stream. Samples without
-- metrics (a heartbeat that said nothing of itself) are not rows: last_seen_at has them.

CREATE TABLE community_node_telemetry (
    stream_seq bigint PRIMARY KEY CHECK (stream_seq > 0),
    node_id text NOT NULL,
    session_id text NOT NULL,
    seen_at timestamptz NOT NULL,
    cpu_load double precision CHECK (cpu_load BETWEEN 0 AND 1024),
    memory_free bigint CHECK (memory_free >= 0),
    last_job_ms bigint CHECK (last_job_ms >= 0),
    network_latency_ms integer CHECK (network_latency_ms >= 0)
);
CREATE INDEX community_node_telemetry_node ON community_node_telemetry (node_id, seen_at);
CREATE INDEX community_node_telemetry_seen ON community_node_telemetry (seen_at);

COMMENT ON TABLE community_node_telemetry IS
  'Node telemetry (CC-20): one row per heartbeat sample that carried metrics, as the node reported them (bounded and checked by the edge; a value out of range was refused, never clamped). A projection of CCN_TELEMETRY (registry service, durable registry_node_telemetry), rebuilt by replay; rows older than the stream''s retention (CCN_TELEMETRY_MAX_AGE_S) before the newest sample are removed, as the stream removes the samples.';
COMMENT ON COLUMN community_node_telemetry.stream_seq IS 'Sequence of the sample in CCN_TELEMETRY: one row per sample, so a replay writes nothing twice.';
COMMENT ON COLUMN community_node_telemetry.node_id IS 'Public id of the node (community_nodes.node_public_id); no foreign key: samples and node events are projected by different consumers, in no order between them.';
COMMENT ON COLUMN community_node_telemetry.session_id IS 'Session the heartbeat came on (community_node_sessions.session_id).';
COMMENT ON COLUMN community_node_telemetry.seen_at IS 'When the registry took the heartbeat (the sample''s seen_at, registry clock).';
COMMENT ON COLUMN community_node_telemetry.cpu_load IS 'The node''s 1-minute load average; NULL when it did not say.';
COMMENT ON COLUMN community_node_telemetry.memory_free IS 'Memory available on the node, in bytes (Linux MemAvailable); NULL when it did not say.';
COMMENT ON COLUMN community_node_telemetry.last_job_ms IS 'How long the node''s last job took it, in milliseconds; NULL before its first job.';
COMMENT ON COLUMN community_node_telemetry.network_latency_ms IS 'The node''s last round trip to the edge, in milliseconds; NULL when it had none to time.';
