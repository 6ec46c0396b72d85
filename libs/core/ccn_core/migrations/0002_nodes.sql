-- Read models of the node aggregate (stream CCN_NODES), written only by the registry's
-- projections and rebuilt by replay. Plan items CC-01 (community_nodes) and CC-02
-- (community_node_sessions). Tokens are never stored, only SHA-256 hashes of them; IP
-- addresses are never stored, only salted HMACs.

CREATE TABLE community_nodes (
    node_public_id uuid PRIMARY KEY,
    api_token_hash text NOT NULL,
    consent_flag boolean NOT NULL DEFAULT false,
    consent_version text,
    consent_hash text,
    consent_recorded_at timestamptz,
    user_id text,
    user_agent text,
    node_version text,
    is_active boolean NOT NULL DEFAULT true,
    opted_out_at timestamptz,
    opt_out_reason text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    last_seen_at timestamptz,
    correlation_id text NOT NULL
);
COMMENT ON TABLE community_nodes IS
  'One row per registered compute node (CC-01). A projection of CCN_NODES: never written by a command handler.';
COMMENT ON COLUMN community_nodes.node_public_id IS 'Public id of the node (random UUIDv4), also the node aggregate id.';
COMMENT ON COLUMN community_nodes.api_token_hash IS 'SHA-256 of the secret part of the node API token; the token itself is shown once and never stored.';
COMMENT ON COLUMN community_nodes.consent_flag IS 'Whether the volunteer ticked consent at registration.';
COMMENT ON COLUMN community_nodes.consent_version IS 'Version of the consent document last agreed to (ccn_core/consent/<version>.md); NULL = none yet.';
COMMENT ON COLUMN community_nodes.consent_hash IS 'SHA-256 of that consent document, as quoted by the node.';
COMMENT ON COLUMN community_nodes.consent_recorded_at IS 'When the current consent was recorded.';
COMMENT ON COLUMN community_nodes.user_id IS 'Optional Grant Network account the node belongs to.';
COMMENT ON COLUMN community_nodes.user_agent IS 'User agent the node reported at registration.';
COMMENT ON COLUMN community_nodes.node_version IS 'Node software version reported at registration.';
COMMENT ON COLUMN community_nodes.is_active IS 'False once the node opted out; an inactive node gets no work and its tokens are refused.';
COMMENT ON COLUMN community_nodes.opted_out_at IS 'When the node opted out; NULL while active.';
COMMENT ON COLUMN community_nodes.opt_out_reason IS 'Reason the volunteer gave when opting out, if any.';
COMMENT ON COLUMN community_nodes.created_at IS 'When the node registered (occurred_at of node.registered).';
COMMENT ON COLUMN community_nodes.updated_at IS 'occurred_at of the last node event applied.';
COMMENT ON COLUMN community_nodes.last_seen_at IS 'Last heartbeat from any of its sessions (from CCN_TELEMETRY).';
COMMENT ON COLUMN community_nodes.correlation_id IS 'Correlation id of the registration request.';

CREATE TABLE community_node_sessions (
    session_id uuid PRIMARY KEY,
    node_id uuid NOT NULL REFERENCES community_nodes (node_public_id),
    session_token_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    user_agent text,
    ip_hash text,
    is_active boolean NOT NULL DEFAULT true,
    ended_at timestamptz,
    end_reason text
);
CREATE INDEX community_node_sessions_node_id ON community_node_sessions (node_id, is_active);
COMMENT ON TABLE community_node_sessions IS
  'Active and past sessions of compute nodes (CC-02). A projection of CCN_NODES plus heartbeats from CCN_TELEMETRY.';
COMMENT ON COLUMN community_node_sessions.session_id IS 'Session id (UUIDv4), part of the session token.';
COMMENT ON COLUMN community_node_sessions.node_id IS 'The node the session belongs to.';
COMMENT ON COLUMN community_node_sessions.session_token_hash IS 'SHA-256 of the secret part of the session token; the token is never stored.';
COMMENT ON COLUMN community_node_sessions.created_at IS 'When the session started.';
COMMENT ON COLUMN community_node_sessions.last_seen_at IS 'Last heartbeat on this session (its start until the first one).';
COMMENT ON COLUMN community_node_sessions.user_agent IS 'User agent that opened the session.';
COMMENT ON COLUMN community_node_sessions.ip_hash IS 'Salted HMAC-SHA-256 of the client IP; the IP itself is never stored.';
COMMENT ON COLUMN community_node_sessions.is_active IS 'False once ended, superseded, or the node opted out.';
COMMENT ON COLUMN community_node_sessions.ended_at IS 'When the session ended; NULL while active.';
COMMENT ON COLUMN community_node_sessions.end_reason IS 'Why it ended: given by the node, superseded, or opted out.';

CREATE TABLE community_node_liveness (
    session_id uuid PRIMARY KEY,
    node_id uuid NOT NULL,
    last_seen_at timestamptz NOT NULL
);
COMMENT ON TABLE community_node_liveness IS
  'Latest heartbeat per session, from CCN_TELEMETRY. Kept apart so a heartbeat that overtakes its session''s row in the other projection is not lost: whichever projection comes second takes the later time.';
COMMENT ON COLUMN community_node_liveness.session_id IS 'Session the heartbeat came on.';
COMMENT ON COLUMN community_node_liveness.node_id IS 'Node of that session.';
COMMENT ON COLUMN community_node_liveness.last_seen_at IS 'Time of the latest heartbeat.';
