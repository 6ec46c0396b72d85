"""The crawler: crawl campaigns (seed URLs, extraction rules, a recrawl schedule) turned into
crawl jobs, and each finished job's page recorded as changed, unchanged or failed, with its
near-duplicates across sites linked. It owns the campaign aggregate (CCN_CRAWL); the pages
themselves are fetched by nodes through the fetch proxy."""
