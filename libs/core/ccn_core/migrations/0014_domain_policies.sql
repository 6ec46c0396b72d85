-- The crawl allow-list and its robots audit (issue #16, plan CC-05): one row per domain an admin
-- or the CSV importer allowed or blocked, with its limits and who reviewed its robots.txt and
-- terms, when. It replaces the allow-list CSV (Allow_List_Policy_v1.csv) and the robots audit
-- summary (robots_audit_summary.csv): every column of both is here, and `ccn domains import`
-- loads such a file as domain-policy events. A read model of CCN_POLICY (ccn.domain.<id>.*),
-- written only by the analytics service's domain projection and rebuilt by replay; the fetch
-- proxy never reads it (it folds the stream itself), so orchestrators and reports query it.
-- A domain's history (who changed what, when) is its events: GET /admin/domains/{domain} and
-- the audit trail (audit_log, aggregate_type 'domain').

CREATE TABLE community_domains (
    policy_id text PRIMARY KEY,
    domain text NOT NULL UNIQUE,
    permission text NOT NULL CHECK (permission IN ('allowed', 'blocked')),
    include_subdomains boolean NOT NULL DEFAULT false,
    requests_per_minute integer CHECK (requests_per_minute BETWEEN 1 AND 600),
    requests_per_hour integer CHECK (requests_per_hour BETWEEN 1 AND 36000),
    max_concurrent integer CHECK (max_concurrent BETWEEN 1 AND 64),
    allowed_paths text[] NOT NULL DEFAULT '{}',
    allowed_patterns text[] NOT NULL DEFAULT '{}',
    notes text,
    block_reason text,
    reviewer text,
    reviewed_at timestamptz,
    changed_by text NOT NULL,
    first_decided_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    last_event_type text NOT NULL,
    last_seq bigint NOT NULL CHECK (last_seq > 0)
);
-- GET /admin/domains pages by domain, optionally for one permission; job generation asks for the
-- allowed domains (a partial index keeps that lookup small when most entries are blocks)
CREATE INDEX community_domains_permission ON community_domains (permission, domain);
CREATE INDEX community_domains_allowed ON community_domains (domain) WHERE permission = 'allowed';
-- the robots audit: which domains are due for review, by whom
CREATE INDEX community_domains_reviewed ON community_domains (reviewed_at NULLS FIRST, domain);

COMMENT ON TABLE community_domains IS
  'The crawl allow-list and robots audit: one row per reviewed domain (allowed or blocked) with its limits and review. A projection of CCN_POLICY (analytics service); never written by a command handler; rebuilt by replay.';
COMMENT ON COLUMN community_domains.policy_id IS 'The domain-policy aggregate id: the domain with ''.'' written ''_'' and ''_'' written ''U'' (ccn.domain.<policy_id>.*).';
COMMENT ON COLUMN community_domains.domain IS 'The domain, canonical: ASCII (IDNA A-labels for Unicode names), lowercase, no trailing dot.';
COMMENT ON COLUMN community_domains.permission IS 'allowed: the fetch proxy may fetch from it within its limits; blocked: every fetch for it (and for its subdomains without an entry of their own) is refused.';
COMMENT ON COLUMN community_domains.include_subdomains IS 'An allowance also covers every subdomain without an entry of its own, within this entry''s limits.';
COMMENT ON COLUMN community_domains.requests_per_minute IS 'Fetches per minute across every proxy replica; NULL: the project''s default.';
COMMENT ON COLUMN community_domains.requests_per_hour IS 'Fetches per hour across every proxy replica; NULL: the project''s default.';
COMMENT ON COLUMN community_domains.max_concurrent IS 'Fetches in flight at once; NULL: the project''s default.';
COMMENT ON COLUMN community_domains.allowed_paths IS 'Path prefixes that may be fetched (/grants); empty with no patterns: every path robots.txt allows.';
COMMENT ON COLUMN community_domains.allowed_patterns IS 'robots.txt-style patterns that may be fetched (* any run, a final $ the end: /*.pdf$).';
COMMENT ON COLUMN community_domains.notes IS 'The reviewer''s notes (what robots.txt and the terms say).';
COMMENT ON COLUMN community_domains.block_reason IS 'Why the domain is blocked; NULL when allowed.';
COMMENT ON COLUMN community_domains.reviewer IS 'Who reviewed the domain''s robots.txt and terms of use (the robots audit).';
COMMENT ON COLUMN community_domains.reviewed_at IS 'When that review was done; NULL: not recorded.';
COMMENT ON COLUMN community_domains.changed_by IS 'Who made the latest change: the admin token''s name, or the importer''s.';
COMMENT ON COLUMN community_domains.first_decided_at IS 'When the domain was first allowed or blocked (its first event).';
COMMENT ON COLUMN community_domains.updated_at IS 'When the latest change happened (its event''s occurred_at).';
COMMENT ON COLUMN community_domains.last_event_type IS 'The latest change: domain.allowed, domain.blocked or domain.policy_updated.';
COMMENT ON COLUMN community_domains.last_seq IS 'CCN_POLICY sequence of the latest change; the version an admin reads back.';
