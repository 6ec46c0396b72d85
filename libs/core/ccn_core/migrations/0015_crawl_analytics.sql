-- Crawl analytics (issue #16, plan CC-65): one row per domain the fetch proxy fetched, refused or
-- failed for, with its pages, successes and failures by cause, refusals by stage, latency (average
-- and a histogram for p95), extraction yield, circuit-breaker state and limit alerts. A read model
-- of CCN_FETCH (ccn.fetch.<domain id>.*), written only by the analytics service's crawl projection
-- (durable analytics_crawl_domain_stats), which folds each batch into the rows it touches in the
-- batch's transaction (ccn_analytics.crawl_stats), and rebuilt by replay. Served by
-- GET /admin/crawl/domains (JSON or CSV) and `ccn crawl stats`.
-- The breaker changes and limit alerts are also steps of the orchestrator log (durable
-- analytics_orchestrator_fetch_log): domain_breaker_changed, domain_limit_alert, job_id NULL.

CREATE TABLE crawl_domain_stats (
    domain text PRIMARY KEY,
    pages_fetched bigint NOT NULL DEFAULT 0 CHECK (pages_fetched >= 0),
    status_2xx bigint NOT NULL DEFAULT 0 CHECK (status_2xx >= 0),
    status_3xx bigint NOT NULL DEFAULT 0 CHECK (status_3xx >= 0),
    status_4xx bigint NOT NULL DEFAULT 0 CHECK (status_4xx >= 0),
    status_5xx bigint NOT NULL DEFAULT 0 CHECK (status_5xx >= 0),
    not_modified bigint NOT NULL DEFAULT 0 CHECK (not_modified >= 0),
    bytes_stored bigint NOT NULL DEFAULT 0 CHECK (bytes_stored >= 0),
    failures jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(failures) = 'object'),
    refusals jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(refusals) = 'object'),
    latency_count bigint NOT NULL DEFAULT 0 CHECK (latency_count >= 0),
    latency_sum_ms double precision NOT NULL DEFAULT 0 CHECK (latency_sum_ms >= 0),
    latency_histogram bigint[] NOT NULL,
    yield_pages bigint NOT NULL DEFAULT 0 CHECK (yield_pages >= 0),
    fields_asked bigint NOT NULL DEFAULT 0 CHECK (fields_asked >= 0),
    fields_found bigint NOT NULL DEFAULT 0 CHECK (fields_found >= 0 AND fields_found <= fields_asked),
    breaker_state text CHECK (breaker_state IN ('closed', 'open', 'half_open')),
    breaker_changed_at timestamptz,
    breaker_reason text,
    breaker_opens bigint NOT NULL DEFAULT 0 CHECK (breaker_opens >= 0),
    limit_alerts bigint NOT NULL DEFAULT 0 CHECK (limit_alerts >= 0),
    last_limit_alert_at timestamptz,
    last_limit_alert_limit text,
    first_seen_at timestamptz,
    last_seen_at timestamptz
);
CREATE INDEX crawl_domain_stats_breaker ON crawl_domain_stats (breaker_state) WHERE breaker_state IS NOT NULL;

COMMENT ON TABLE crawl_domain_stats IS
  'Crawl analytics (CC-65): one row per domain the fetch proxy recorded anything for: pages fetched, answers by status class, failures by cause, refusals by stage, latency (average and a histogram for p95), extraction yield, circuit-breaker state and limit alerts. A projection of CCN_FETCH (analytics service, durable analytics_crawl_domain_stats), folded batch by batch in stream order; rebuilt by replay.';
COMMENT ON COLUMN crawl_domain_stats.domain IS 'The domain as the fetch records name it (canonical, lowercase ASCII); empty for refusals of URLs with no readable host.';
COMMENT ON COLUMN crawl_domain_stats.pages_fetched IS 'Fetches the site answered (fetch.fetched), whatever the status.';
COMMENT ON COLUMN crawl_domain_stats.status_2xx IS 'Answers with a 2xx status.';
COMMENT ON COLUMN crawl_domain_stats.status_3xx IS 'Answers with a 3xx status left after the proxy followed redirects (a 304 of a recrawl counts here and in not_modified).';
COMMENT ON COLUMN crawl_domain_stats.status_4xx IS 'Answers with a 4xx status.';
COMMENT ON COLUMN crawl_domain_stats.status_5xx IS 'Answers with a 5xx status.';
COMMENT ON COLUMN crawl_domain_stats.not_modified IS 'Recrawls the site answered 304 Not Modified: a success, nothing new to store.';
COMMENT ON COLUMN crawl_domain_stats.bytes_stored IS 'Sum of the stored bodies'' sizes, in bytes (a body stored once for many fetches counts each time).';
COMMENT ON COLUMN crawl_domain_stats.failures IS 'Fetches with no usable answer, by cause (fetch.failed reason: timeout, connect_failed, tls_error, too_large, decompression_bomb, content_type_not_allowed, too_many_redirects, bad_response) as a JSON object of counts.';
COMMENT ON COLUMN crawl_domain_stats.refusals IS 'Fetches policy refused, by stage (fetch.refused stage: job, scheme, allow_list, robots, rate_limit, breaker, egress, redirect) as a JSON object of counts.';
COMMENT ON COLUMN crawl_domain_stats.latency_count IS 'Answers whose latency is in latency_sum_ms and latency_histogram (every fetch.fetched).';
COMMENT ON COLUMN crawl_domain_stats.latency_sum_ms IS 'Sum of the answers'' elapsed times, in milliseconds: the average is latency_sum_ms / latency_count.';
COMMENT ON COLUMN crawl_domain_stats.latency_histogram IS 'Answers per latency bucket: element i (1-based i+1) counts answers of at most 2^(i/8) ms, from 1 ms to 2^17 ms; the last element counts longer ones. A percentile read from it is high by at most 9%.';
COMMENT ON COLUMN crawl_domain_stats.yield_pages IS 'Pages whose extraction was recorded (fetch.extraction_yield, from accepted crawl job results).';
COMMENT ON COLUMN crawl_domain_stats.fields_asked IS 'Fields the crawl jobs'' rules asked for on those pages (one field on N pages counts N).';
COMMENT ON COLUMN crawl_domain_stats.fields_found IS 'Of fields_asked, those found: the extraction yield is fields_found / fields_asked.';
COMMENT ON COLUMN crawl_domain_stats.breaker_state IS 'The domain''s circuit breaker after its last change (closed, open, half_open); NULL when it never changed (closed).';
COMMENT ON COLUMN crawl_domain_stats.breaker_changed_at IS 'When the breaker last changed (the fetch.breaker_changed event''s occurred_at).';
COMMENT ON COLUMN crawl_domain_stats.breaker_reason IS 'Why it last changed (e.g. "5 failures in a row", "the probe failed").';
COMMENT ON COLUMN crawl_domain_stats.breaker_opens IS 'How many times the breaker opened.';
COMMENT ON COLUMN crawl_domain_stats.limit_alerts IS 'Limit alerts raised for the domain (fetch.limit_alert: it kept hitting its limits within a window).';
COMMENT ON COLUMN crawl_domain_stats.last_limit_alert_at IS 'When the last limit alert was raised.';
COMMENT ON COLUMN crawl_domain_stats.last_limit_alert_limit IS 'The limit the last alert named (per_minute, per_hour, concurrent, crawl_delay, retry_after).';
COMMENT ON COLUMN crawl_domain_stats.first_seen_at IS 'The earliest fetch record of the domain.';
COMMENT ON COLUMN crawl_domain_stats.last_seen_at IS 'The latest fetch record of the domain.';

COMMENT ON COLUMN orchestrator_log.stream IS 'JetStream stream holding the event: CCN_JOBS for job steps, CCN_NODES for node steps, CCN_DEADLETTER for dead letters, CCN_FETCH for domain steps (breaker changes, limit alerts).';
COMMENT ON COLUMN orchestrator_log.event IS 'Lifecycle step. A job''s: job_created, job_claimed, job_released (handed back unworked; the next claim has the same attempt), job_reassigned, job_result_submitted, job_completed, job_failed, job_abandoned, job_retried, job_dead or job_cancelled. A node''s: node_registered, node_consent_recorded, node_session_started, node_session_ended, node_opted_out, node_banned, node_shadow_banned, node_drain_requested, node_unbanned, node_budgets_set, node_rate_limited, node_health_changed or node_backoff_changed. A dead letter''s (ADR 0012): event_dead_lettered, dead_letter_replayed or dead_letter_replay_failed, with job_id or node_id naming the aggregate of the dead-lettered event when its subject tells. A crawled domain''s: domain_breaker_changed or domain_limit_alert (details name the domain; job_id and node_id NULL).';
