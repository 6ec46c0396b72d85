"""The validation service: every submitted result judged before its job completes (schema,
checksum, the job type's business rules), agreement between replicas for the job types that
ask for it, quarantine of the rejected, and a signed receipt for the accepted. It owns the
verdicts; the job aggregate stays the scheduler's."""
