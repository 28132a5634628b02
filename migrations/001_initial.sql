-- Prechat's state. Every effect table is keyed so that applying the same
-- events again, in any order, writes nothing new: writes carry the event time
-- and messageId of the event that made them, and a write only replaces one
-- that it wins against (later event time, ties broken by messageId).
--
-- Identifiers compare byte-wise (COLLATE "C"): faster keys, and the same
-- order as the Go code that breaks last-writer-wins ties by messageId.
--
-- Tables whose rows are rewritten in place (traits, links, memberships,
-- conversations, documents, offsets) leave free space on each page
-- (fillfactor 70) so updates stay heap-only and are pruned without waiting
-- for vacuum, and they are vacuumed and analysed early.

-- prechat_stamp_after reports whether trait entry a ({"v","t","m"}) wins
-- over entry b, which may be NULL: later t (event time in microseconds since
-- the Unix epoch), ties broken by m (messageId, byte-wise).
CREATE FUNCTION prechat_stamp_after(a jsonb, b jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT b IS NULL
        OR ((a->>'t')::bigint, (a->>'m') COLLATE "C") > ((b->>'t')::bigint, (b->>'m') COLLATE "C")
$$;
COMMENT ON FUNCTION prechat_stamp_after(jsonb, jsonb) IS 'Last-writer-wins order of two trait entries: later event time, then greater messageId.';

-- prechat_merge_traits merges incoming trait entries into cur, key by key,
-- keeping the winner of each.
CREATE FUNCTION prechat_merge_traits(cur jsonb, incoming jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT cur || coalesce(jsonb_object_agg(n.key, n.value) FILTER (WHERE prechat_stamp_after(n.value, cur -> n.key)), '{}'::jsonb)
    FROM jsonb_each(incoming) AS n
$$;
COMMENT ON FUNCTION prechat_merge_traits(jsonb, jsonb) IS 'Per-key last-writer-wins merge of two trait objects; applying the same entries again changes nothing.';

-- prechat_traits_change reports whether merging incoming into cur changes it.
CREATE FUNCTION prechat_traits_change(cur jsonb, incoming jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(bool_or(prechat_stamp_after(n.value, cur -> n.key)), false)
    FROM jsonb_each(incoming) AS n
$$;

CREATE TABLE traits (
    subject_kind text COLLATE "C" NOT NULL CHECK (subject_kind IN ('user', 'anonymous', 'group')),
    subject_id   text COLLATE "C" NOT NULL,
    traits       jsonb NOT NULL,
    PRIMARY KEY (subject_kind, subject_id)
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
COMMENT ON TABLE traits IS 'Cached traits, one row per profile: identify traits of users (subject_kind user, by userId) and of anonymous visitors (anonymous, by anonymousId), and group traits (group, by groupId). Each trait is {"v": value, "t": event time in microseconds since the Unix epoch, "m": messageId}; last writer wins per key. The view trait_values shows one row per trait.';
COMMENT ON COLUMN traits.traits IS 'Trait key to {"v": the value exactly as the event carried it, "t": event time (timestamp, else receivedAt - (sentAt - originalTimestamp), else receivedAt, else the Kafka message time) in microseconds since the Unix epoch, "m": messageId of the event that wrote it}.';

CREATE VIEW trait_values AS
SELECT t.subject_kind, t.subject_id, e.key, e.value -> 'v' AS value,
       to_timestamp((e.value ->> 't')::numeric / 1000000) AS event_time, e.value ->> 'm' AS message_id
FROM traits t, jsonb_each(t.traits) AS e;
COMMENT ON VIEW trait_values IS 'One row per cached trait: subject, key, value, and the event time and messageId of the event that wrote it.';

CREATE TABLE identity_links (
    anonymous_id text COLLATE "C" NOT NULL,
    user_id      text COLLATE "C" NOT NULL,
    event_time   timestamptz NOT NULL,
    message_id   text COLLATE "C" NOT NULL,
    PRIMARY KEY (anonymous_id, user_id)
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
CREATE INDEX identity_links_user_id_idx ON identity_links (user_id);
COMMENT ON TABLE identity_links IS 'anonymousId to userId links, made by any event carrying both ids and by alias (previousId to userId). A visitor''s user is its latest link by (event_time, message_id).';

CREATE TABLE group_memberships (
    member_kind text COLLATE "C" NOT NULL CHECK (member_kind IN ('user', 'anonymous')),
    member_id   text COLLATE "C" NOT NULL,
    group_id    text COLLATE "C" NOT NULL,
    event_time  timestamptz NOT NULL,
    message_id  text COLLATE "C" NOT NULL,
    PRIMARY KEY (member_kind, member_id, group_id)
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
CREATE INDEX group_memberships_group_id_idx ON group_memberships (group_id);
COMMENT ON TABLE group_memberships IS 'Group calls: the user (by userId) or anonymous visitor that joined a group. A visitor''s group is the latest membership of the visitor or its user.';

CREATE TABLE conversations (
    anonymous_id text COLLATE "C" PRIMARY KEY,
    message_id   text COLLATE "C" NOT NULL,
    event_time   timestamptz NOT NULL,
    properties   jsonb       NOT NULL DEFAULT '{}'
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
CREATE INDEX conversations_event_time_idx ON conversations (event_time);
COMMENT ON TABLE conversations IS 'The latest "Live Chat Conversation Started" track per anonymousId, with its properties (the source of Case mappings). prechat_documents are built from it.';

CREATE TABLE prechat_documents (
    anonymous_id text COLLATE "C" PRIMARY KEY,
    document     jsonb       NOT NULL,
    expires_at   timestamptz NOT NULL,
    written_at   timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
CREATE INDEX prechat_documents_expires_at_idx ON prechat_documents (expires_at);
COMMENT ON TABLE prechat_documents IS 'Materialised pre-chat documents, one per visitor with a conversation start; document is exactly the JSON that GET /v1/prechat/{anonymousId} returns. Rebuilt whenever an applied event changes the visitor, until expires_at (conversation start + PRECHAT_TTL). Holds PII: expired rows are never served and are deleted.';
COMMENT ON COLUMN prechat_documents.written_at IS 'Wall-clock time of the last write (the document''s own times are event times).';

CREATE TABLE applied_messages (
    message_id   text COLLATE "C" PRIMARY KEY,
    event_type   text        NOT NULL,
    anonymous_id text COLLATE "C" NOT NULL DEFAULT '',
    user_id      text COLLATE "C" NOT NULL DEFAULT '',
    applied_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applied_messages_applied_at_idx ON applied_messages (applied_at);
COMMENT ON TABLE applied_messages IS 'messageIds of valid events that were applied, in the same transaction as their effects: the read-your-writes check of GET /v1/prechat/{id}?after= and the duplicate bookkeeping. Pruned after its window.';

CREATE TABLE dead_letters (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic       text COLLATE "C" NOT NULL,
    "partition" integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    message_key bytea,
    raw         bytea       NOT NULL,
    reason      text        NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    requeued_at timestamptz,
    UNIQUE (topic, "partition", "offset")
);
CREATE INDEX dead_letters_failed_at_idx ON dead_letters (failed_at);
COMMENT ON TABLE dead_letters IS 'Messages that could not be decoded or are not valid Segment events, with the raw bytes and the reason; written in the same transaction as the offsets that pass them, so none is lost or doubled. convert_from(raw, ''UTF8'') shows the text.';
COMMENT ON COLUMN dead_letters.requeued_at IS 'When the message was produced to the topic again after its cause was fixed; the row is kept.';

CREATE TABLE kafka_offsets (
    consumer_group text COLLATE "C" NOT NULL,
    topic          text COLLATE "C" NOT NULL,
    "partition"    integer     NOT NULL,
    next_offset    bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, "partition")
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
COMMENT ON TABLE kafka_offsets IS 'Per consumer group, the next offset to consume from each partition, written in the same transaction as the effects of the messages before it. Consumption resumes from here on partition assignment; Kafka''s committed offsets are a copy for lag tooling.';

---- create above / drop below ----

DROP TABLE kafka_offsets;
DROP TABLE dead_letters;
DROP TABLE applied_messages;
DROP TABLE prechat_documents;
DROP TABLE conversations;
DROP TABLE group_memberships;
DROP TABLE identity_links;
DROP VIEW trait_values;
DROP TABLE traits;
DROP FUNCTION prechat_traits_change(jsonb, jsonb);
DROP FUNCTION prechat_merge_traits(jsonb, jsonb);
DROP FUNCTION prechat_stamp_after(jsonb, jsonb);
