-- Node governance (issue #15): a node's standing as admins and the governance policies left it,
-- and running totals of its work record. Written only by the registry's node read model from
-- node events (node.banned, node.shadow_banned, node.drain_requested, node.unbanned,
-- node.budgets_set, node.health_changed, node.backoff_changed, node.work_recorded,
-- node.rate_limited, node.consent_recorded); rebuilt by replay like the rest of the table.

ALTER TABLE community_nodes
    ADD COLUMN consent_scopes text[],
    ADD COLUMN is_banned boolean NOT NULL DEFAULT false,
    ADD COLUMN ban_reason text,
    ADD COLUMN is_shadow_banned boolean NOT NULL DEFAULT false,
    ADD COLUMN is_draining boolean NOT NULL DEFAULT false,
    ADD COLUMN health text NOT NULL DEFAULT 'healthy'
        CHECK (health IN ('healthy', 'unstable', 'offline', 'banned')),
    ADD COLUMN backoff_stage text NOT NULL DEFAULT 'none'
        CHECK (backoff_stage IN ('none', 'mild', 'moderate', 'severe', 'suspended')),
    ADD COLUMN backoff_until timestamptz,
    ADD COLUMN budgets jsonb,
    ADD COLUMN jobs_completed bigint NOT NULL DEFAULT 0 CHECK (jobs_completed >= 0),
    ADD COLUMN jobs_failed bigint NOT NULL DEFAULT 0 CHECK (jobs_failed >= 0),
    ADD COLUMN requests_refused bigint NOT NULL DEFAULT 0 CHECK (requests_refused >= 0);

CREATE INDEX community_nodes_standing ON community_nodes (health, is_banned, is_shadow_banned, is_draining);

COMMENT ON COLUMN community_nodes.consent_scopes IS 'Kinds of work the node consented to (crawl, documents, nlp, enrichment, graph, datasets); NULL: consent recorded before scopes existed, which stands for every scope.';
COMMENT ON COLUMN community_nodes.is_banned IS 'An admin banned the node (node.banned): every request is refused with 403 until node.unbanned.';
COMMENT ON COLUMN community_nodes.ban_reason IS 'The admin''s reason for the ban in force, if any.';
COMMENT ON COLUMN community_nodes.is_shadow_banned IS 'An admin shadow-banned the node: it keeps getting work, but its results never complete a job.';
COMMENT ON COLUMN community_nodes.is_draining IS 'An admin asked the node to drain: it finishes its jobs, gets no new ones, then is told bye.';
COMMENT ON COLUMN community_nodes.health IS 'The health policy''s latest verdict (node.health_changed): healthy, unstable, offline or banned (results that misreport their budgets).';
COMMENT ON COLUMN community_nodes.backoff_stage IS 'The backoff stage in force (node.backoff_changed): none, mild, moderate, severe, suspended.';
COMMENT ON COLUMN community_nodes.backoff_until IS 'The node gets no new work before this time; NULL: no backoff.';
COMMENT ON COLUMN community_nodes.budgets IS 'Resource budgets an admin set (node.budgets_set): max_bandwidth_per_min (bytes), max_cpu_time_per_job_s, max_memory_mb; NULL: none set.';
COMMENT ON COLUMN community_nodes.jobs_completed IS 'Jobs the node completed, summed over its node.work_recorded windows.';
COMMENT ON COLUMN community_nodes.jobs_failed IS 'Jobs the node failed, abandoned or ran over budget, summed over its node.work_recorded windows.';
COMMENT ON COLUMN community_nodes.requests_refused IS 'Requests of the node its rate limits refused, summed over its node.rate_limited windows.';
