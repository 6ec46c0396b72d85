-- Dead letters (ADR 0012): events a projection or a reactor could not process. The facts are
-- events on CCN_DEADLETTER (deadletter.recorded, deadletter.replayed, deadletter.replay_failed);
-- dead_letters is their read model, written only by the analytics service's projection (durable
-- analytics_dead_letters) and rebuilt by replay. The poison event itself is never copied here:
-- it stays in its stream, found by (stream, stream_seq).

CREATE TABLE dead_letters (
    dead_letter_id text PRIMARY KEY,
    consumer text NOT NULL,
    consumer_kind text NOT NULL CHECK (consumer_kind IN ('projection', 'reactor')),
    stream text NOT NULL,
    stream_seq bigint NOT NULL CHECK (stream_seq > 0),
    subject text NOT NULL,
    event_type text,
    event_id text,
    correlation_id text NOT NULL,
    error_class text NOT NULL,
    error_message text NOT NULL,
    deliveries integer,
    status text NOT NULL CHECK (status IN ('pending', 'replayed', 'failed_again')),
    replays integer NOT NULL DEFAULT 0 CHECK (replays >= 0),
    last_replay_error text,
    dead_lettered_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (consumer, stream, stream_seq)
);
CREATE INDEX dead_letters_status ON dead_letters (status, dead_lettered_at);

COMMENT ON TABLE dead_letters IS
  'Dead letters (ADR 0012): one row per event a projection or reactor could not process, with where it is, why it failed and whether a replay (ccn deadletter replay) has applied it since. A projection of CCN_DEADLETTER (analytics service); rebuilt by replay. Holds no part of the poison event''s payload.';
COMMENT ON COLUMN dead_letters.dead_letter_id IS 'Aggregate id of the dead letter on CCN_DEADLETTER: <consumer>-<stream>-<seq> (a hash when that is no subject token). What `ccn deadletter replay` takes.';
COMMENT ON COLUMN dead_letters.consumer IS 'Durable consumer that could not process the event (ccn_core.topology): the projection or reactor that replays it.';
COMMENT ON COLUMN dead_letters.consumer_kind IS 'projection (events into Postgres) or reactor (events into commands).';
COMMENT ON COLUMN dead_letters.stream IS 'JetStream stream holding the original event.';
COMMENT ON COLUMN dead_letters.stream_seq IS 'Sequence of the original event in that stream; a replay reads it from there.';
COMMENT ON COLUMN dead_letters.subject IS 'Subject of the original event, control characters escaped.';
COMMENT ON COLUMN dead_letters.event_type IS 'The event''s ccn-type header, when it had one (escaped, bounded).';
COMMENT ON COLUMN dead_letters.event_id IS 'The event''s Nats-Msg-Id header (its envelope event id), when it had one (escaped, bounded).';
COMMENT ON COLUMN dead_letters.correlation_id IS 'The event''s correlation id when it had one, else the dead letter id: the orchestrator log shows the dead letter on its request''s thread.';
COMMENT ON COLUMN dead_letters.error_class IS 'Class of the error the event met first (CharacterNotInRepertoireError, ValidationError, BadInput, ...).';
COMMENT ON COLUMN dead_letters.error_message IS 'Its message, control characters escaped, at most 500 characters.';
COMMENT ON COLUMN dead_letters.deliveries IS 'For a reactor that gave up after repeated failures, how many times the event was delivered; NULL otherwise.';
COMMENT ON COLUMN dead_letters.status IS 'pending: not replayed yet; replayed: a replay applied it; failed_again: the last replay failed too.';
COMMENT ON COLUMN dead_letters.replays IS 'How many replays were recorded (either outcome).';
COMMENT ON COLUMN dead_letters.last_replay_error IS 'Error of the last replay that failed; NULL once one succeeds.';
COMMENT ON COLUMN dead_letters.dead_lettered_at IS 'When the event was dead-lettered (the deadletter.recorded event''s occurred_at).';
COMMENT ON COLUMN dead_letters.updated_at IS 'When the last event of this dead letter happened.';

-- A projection's replays of its dead letters: the row commits with the rows the replay applied,
-- so a replay asked twice (a retried command, two operators) applies the event once.
CREATE TABLE projection_replays (
    projection text NOT NULL,
    stream text NOT NULL,
    stream_seq bigint NOT NULL CHECK (stream_seq > 0),
    replayed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, stream_seq)
);
COMMENT ON TABLE projection_replays IS
  'Dead-lettered events a projection has applied late, by replay (ADR 0012); written in the same transaction as the rows, cleared by a rebuild of the projection (which meets the event in order).';
COMMENT ON COLUMN projection_replays.projection IS 'Durable consumer name of the projection (as in projection_checkpoints).';
COMMENT ON COLUMN projection_replays.stream IS 'JetStream stream the projection reads.';
COMMENT ON COLUMN projection_replays.stream_seq IS 'Sequence of the replayed event in that stream.';
COMMENT ON COLUMN projection_replays.replayed_at IS 'When the replay committed.';

-- The orchestrator log shows dead letters and their replays beside the steps of the job or node
-- whose event it was (a third projection into it, durable analytics_orchestrator_deadletter_log).
COMMENT ON COLUMN orchestrator_log.stream IS 'JetStream stream holding the event: CCN_JOBS for job steps, CCN_NODES for node steps, CCN_DEADLETTER for dead letters and their replays.';
COMMENT ON COLUMN orchestrator_log.event IS 'Lifecycle step. A job''s: job_created, job_claimed, job_released (handed back unworked; the next claim has the same attempt), job_reassigned, job_result_submitted, job_completed, job_failed, job_abandoned, job_retried, job_dead or job_cancelled. A node''s: node_registered, node_consent_recorded, node_session_started, node_session_ended or node_opted_out. A dead letter''s (ADR 0012): event_dead_lettered, dead_letter_replayed or dead_letter_replay_failed, with job_id or node_id naming the aggregate of the dead-lettered event when its subject tells.';
