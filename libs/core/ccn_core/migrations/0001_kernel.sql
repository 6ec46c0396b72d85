-- Event-sourcing kernel tables. Read models are derived from the JetStream streams; these
-- tables record how far each derivation has come, never a fact the streams do not hold.

CREATE TABLE projection_checkpoints (
    projection text PRIMARY KEY,
    stream text NOT NULL,
    last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE projection_checkpoints IS
  'One row per projection: the last stream sequence applied to its tables, updated in the same transaction as the rows it vouches for.';
COMMENT ON COLUMN projection_checkpoints.projection IS 'Durable consumer name of the projection (ccn_core.topology).';
COMMENT ON COLUMN projection_checkpoints.stream IS 'JetStream stream the projection reads.';
COMMENT ON COLUMN projection_checkpoints.last_seq IS 'Stream sequence of the last event applied; 0 = nothing yet. Replay resumes at last_seq + 1.';
COMMENT ON COLUMN projection_checkpoints.updated_at IS 'When the checkpoint last moved.';
