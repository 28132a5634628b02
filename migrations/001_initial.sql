-- Prechat's state. Every effect table is keyed so that applying the same
-- events again, in any order, writes nothing new: writes carry the event time
-- and messageId of the event that made them, and a write only replaces one
-- that it wins against (later event time, ties broken by messageId).

CREATE TABLE traits (
    subject_kind text        NOT NULL CHECK (subject_kind IN ('user', 'anonymous', 'group')),
    subject_id   text        NOT NULL,
    key          text        NOT NULL,
    value        jsonb       NOT NULL,
    event_time   timestamptz NOT NULL,
    message_id   text        COLLATE "C" NOT NULL,
    PRIMARY KEY (subject_kind, subject_id, key)
);
COMMENT ON TABLE traits IS 'Cached traits, one row per trait key: identify traits of users (subject_kind user, by userId) and of anonymous visitors (anonymous, by anonymousId), and group traits (group, by groupId). Last writer wins per key by (event_time, message_id).';
COMMENT ON COLUMN traits.value IS 'The trait value exactly as the event carried it.';
COMMENT ON COLUMN traits.event_time IS 'Event time of the winning event: timestamp, else receivedAt - (sentAt - originalTimestamp), else receivedAt, else the Kafka message time.';
COMMENT ON COLUMN traits.message_id IS 'messageId of the event that wrote the value.';

CREATE TABLE identity_links (
    anonymous_id text        NOT NULL,
    user_id      text        NOT NULL,
    event_time   timestamptz NOT NULL,
    message_id   text        COLLATE "C" NOT NULL,
    PRIMARY KEY (anonymous_id, user_id)
);
CREATE INDEX identity_links_user_id_idx ON identity_links (user_id);
COMMENT ON TABLE identity_links IS 'anonymousId to userId links, made by any event carrying both ids and by alias (previousId to userId). A visitor''s user is its latest link by (event_time, message_id).';

CREATE TABLE group_memberships (
    member_kind text        NOT NULL CHECK (member_kind IN ('user', 'anonymous')),
    member_id   text        NOT NULL,
    group_id    text        NOT NULL,
    event_time  timestamptz NOT NULL,
    message_id  text        COLLATE "C" NOT NULL,
    PRIMARY KEY (member_kind, member_id, group_id)
);
CREATE INDEX group_memberships_group_id_idx ON group_memberships (group_id);
COMMENT ON TABLE group_memberships IS 'Group calls: the user (by userId) or anonymous visitor that joined a group. A visitor''s group is the latest membership of the visitor or its user.';

CREATE TABLE conversations (
    anonymous_id text        PRIMARY KEY,
    message_id   text        COLLATE "C" NOT NULL,
    event_time   timestamptz NOT NULL,
    properties   jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX conversations_event_time_idx ON conversations (event_time);
COMMENT ON TABLE conversations IS 'The latest "Live Chat Conversation Started" track per anonymousId, with its properties (the source of Case mappings). prechat_documents are built from it.';

CREATE TABLE prechat_documents (
    anonymous_id text        PRIMARY KEY,
    document     jsonb       NOT NULL,
    expires_at   timestamptz NOT NULL,
    written_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX prechat_documents_expires_at_idx ON prechat_documents (expires_at);
COMMENT ON TABLE prechat_documents IS 'Materialised pre-chat documents, one per visitor with a conversation start; document is exactly the JSON that GET /v1/prechat/{anonymousId} returns. Rebuilt whenever an applied event changes the visitor, until expires_at (conversation start + PRECHAT_TTL). Holds PII: expired rows are never served and are deleted.';
COMMENT ON COLUMN prechat_documents.written_at IS 'Wall-clock time of the last write (the document''s own times are event times).';

CREATE TABLE applied_messages (
    message_id   text        PRIMARY KEY,
    event_type   text        NOT NULL,
    anonymous_id text        NOT NULL DEFAULT '',
    user_id      text        NOT NULL DEFAULT '',
    applied_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applied_messages_applied_at_idx ON applied_messages (applied_at);
COMMENT ON TABLE applied_messages IS 'messageIds of valid events that were applied, in the same transaction as their effects: the read-your-writes check of GET /v1/prechat/{id}?after= and the duplicate bookkeeping. Pruned after its window.';

CREATE TABLE dead_letters (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic       text        NOT NULL,
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
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    "partition"    integer     NOT NULL,
    next_offset    bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, "partition")
);
COMMENT ON TABLE kafka_offsets IS 'Per consumer group, the next offset to consume from each partition, written in the same transaction as the effects of the messages before it. Consumption resumes from here on partition assignment; Kafka''s committed offsets are a copy for lag tooling.';

---- create above / drop below ----

DROP TABLE kafka_offsets;
DROP TABLE dead_letters;
DROP TABLE applied_messages;
DROP TABLE prechat_documents;
DROP TABLE conversations;
DROP TABLE group_memberships;
DROP TABLE identity_links;
DROP TABLE traits;
