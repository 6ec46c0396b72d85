"""The embedded stack: a real nats-server, a real PostgreSQL and the services, as processes.

`ccn up` and the test fixtures start servers through these modules, so both share one code path.
"""
