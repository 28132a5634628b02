-- Fan-out in bounded transactions: when a batch changes a user or group
-- with more live documents than the batch may refresh itself
-- (persistence.Config.FanOutLimit), their visitors are queued here, in the
-- batch's transaction and without passing through the processor's memory,
-- and the consumers refresh them afterwards, a bounded chunk per
-- transaction.
CREATE TABLE document_refreshes (
    anonymous_id text COLLATE "C" PRIMARY KEY,
    queued_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX document_refreshes_queued_at_idx ON document_refreshes (queued_at);
COMMENT ON TABLE document_refreshes IS 'Visitors whose documents a change to a shared user or group made stale, queued when there were more than one batch refreshes itself; the consumers refresh and delete them, oldest first, a chunk per transaction. Empty in steady state.';

---- create above / drop below ----

DROP TABLE document_refreshes;
