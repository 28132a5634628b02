-- The trust model (README, "Trust model"): Segment write keys are public, so
-- every event is attacker-written. What a visitor sent itself counts for its
-- own document; what anyone says about a user or a company reaches other
-- visitors only through events carrying a valid identity proof.
--
-- identity_links.verified: an event with a valid proof for the user made the
-- link (logical or over every event that made it: any order of the same
-- events gives the same row).
--
-- traits.observer: '' for a shared profile (a user's traits, a group's
-- shared traits), written only by verified events; otherwise the anonymousId
-- of the visitor whose own, unverified view of a group this is.
--
-- Rows written before this migration came from events that were never
-- verified and cannot be told apart: shared user and group traits and user
-- memberships are removed (a user's next verified identify, a company's next
-- verified or server-key group call, restores them; visitors' own traits
-- are kept), and every existing link counts as unverified.

ALTER TABLE identity_links ADD COLUMN verified boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN identity_links.verified IS 'True once an event carrying a valid identity proof for user_id (context.prechat.userHash or identityToken, or sent with a server write key) made the link; only then do the user''s traits and memberships reach the visitor''s document.';
COMMENT ON TABLE identity_links IS 'anonymousId to userId links, made by any event carrying both ids and by alias (previousId to userId). A visitor''s user is its latest link by (event_time, message_id); that user''s traits and groups count only when the link is verified.';

-- The refresh's reverse lookup (a user's verified visitors) stays an
-- index-only probe.
DROP INDEX identity_links_user_id_idx;
CREATE INDEX identity_links_user_id_idx ON identity_links (user_id, verified, anonymous_id);

DELETE FROM traits WHERE subject_kind IN ('user', 'group');
DELETE FROM group_memberships WHERE member_kind = 'user';

ALTER TABLE traits ADD COLUMN observer text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE traits DROP CONSTRAINT traits_pkey;
ALTER TABLE traits ADD PRIMARY KEY (subject_kind, subject_id, observer);
ALTER TABLE traits ADD CONSTRAINT traits_observer_check CHECK (observer = '' OR subject_kind = 'group');
COMMENT ON TABLE traits IS 'Cached traits, one row per profile: a visitor''s own traits (subject_kind anonymous, by anonymousId; every identify carrying it), a verified user''s traits (user, by userId; verified identifies only), a group''s shared traits (group, observer ''''; verified or server-key group calls only) and a visitor''s own view of a group (group, observer = the anonymousId; its unverified group calls, seen only by that visitor). Each trait is {"v": value, "t": event time in microseconds since the Unix epoch, "m": messageId}; last writer wins per key. The view trait_values shows one row per trait.';
COMMENT ON COLUMN traits.observer IS '''''= shared profile (verified writes only); otherwise the anonymousId whose own, unverified group traits these are.';

DROP VIEW trait_values;
CREATE VIEW trait_values AS
SELECT t.subject_kind, t.subject_id, t.observer, e.key, e.value -> 'v' AS value,
       to_timestamp((e.value ->> 't')::numeric / 1000000) AS event_time, e.value ->> 'm' AS message_id
FROM traits t, jsonb_each(t.traits) AS e;
COMMENT ON VIEW trait_values IS 'One row per cached trait: subject, observer ('''' for shared profiles), key, value, and the event time and messageId of the event that wrote it.';

COMMENT ON TABLE group_memberships IS 'Group calls: the visitor (anonymous, by anonymousId; any group call carrying it) or the verified user (user, by userId; verified group calls only) that joined a group. A visitor''s group is the latest membership of the visitor or of its verified user; the group''s shared traits count only when that user is a member.';

---- create above / drop below ----

DROP VIEW trait_values;
DELETE FROM traits WHERE observer <> '';
ALTER TABLE traits DROP CONSTRAINT traits_observer_check;
ALTER TABLE traits DROP CONSTRAINT traits_pkey;
ALTER TABLE traits DROP COLUMN observer;
ALTER TABLE traits ADD PRIMARY KEY (subject_kind, subject_id);
CREATE VIEW trait_values AS
SELECT t.subject_kind, t.subject_id, e.key, e.value -> 'v' AS value,
       to_timestamp((e.value ->> 't')::numeric / 1000000) AS event_time, e.value ->> 'm' AS message_id
FROM traits t, jsonb_each(t.traits) AS e;
DROP INDEX identity_links_user_id_idx;
ALTER TABLE identity_links DROP COLUMN verified;
CREATE INDEX identity_links_user_id_idx ON identity_links (user_id, anonymous_id);
