"""The scheduler: the job aggregate, claims, leases, retries."""
