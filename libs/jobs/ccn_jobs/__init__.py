"""Job types the reference node can run: one module per type, a pure function from typed payload to typed result.

`ccn_jobs.registry` is the entry point (JOB_TYPES, decode_payload, decode_result, run_job);
importing it stays cheap, since extractors and models load on a job's first run."""
