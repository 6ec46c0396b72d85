"""The fetch proxy: the only process that reaches the internet. It fetches a URL for a node's
crawl job after checking, in order, that the URL is the job's, its scheme, the domain
allow-list, robots.txt and the domain's limits, then resolves the name and connects only to
globally routable addresses it checked; it stores each body once, content-addressed, and records
every fetch, allowed or refused, in CCN_FETCH. It also owns the domain-policy aggregate."""
