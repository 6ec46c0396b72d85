-- community_jobs.payload_json is stored out of line uncompressed (EXTERNAL) rather than
-- compressed (EXTENDED). A job row is updated at every claim and at its end; a payload that
-- compressed under the ~2 kB inline limit stayed in the row, so each update wrote the
-- compressed payload again, and each insert compressed it with pglz. Out of line, an update
-- copies an 18-byte pointer. On a 4.6 kB extract_text payload, insert + two updates alone:
-- 68-72 µs per job before, 44-48 µs after; in the lifecycle bench, PostgreSQL's CPU per job
-- fell ~5 % (interleaved runs). The cost is disk: the payload is kept uncompressed while the
-- job is in this hot table (the archive, written once per job, still compresses). Rows
-- written before keep their storage.

ALTER TABLE community_jobs ALTER COLUMN payload_json SET STORAGE EXTERNAL;
