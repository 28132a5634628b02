-- Every document refresh goes through document_refreshes, and no lock
-- serialises the pipeline's transactions any more (README "Scale").
--
-- A batch no longer rebuilds documents. It queues what it changed: each
-- visitor it touched ('anonymous'), each user and group whose shared traits
-- or memberships it wrote ('user', 'group'). Refresh transactions, run by
-- every consumer beside its batches, claim the oldest entries (FOR UPDATE
-- SKIP LOCKED), expand users and groups to their live visitors, and rebuild
-- each of those documents once however many batches queued it meanwhile.
--
-- Why nothing is lost without a global lock:
-- * an entry is committed with the change that queued it, and is claimed
--   only once that change is visible: a batch that queues an entry already
--   waiting re-arms it (an UPDATE that clears claimed_until), which holds
--   the row until the batch commits, and a claim skips locked rows;
-- * a claim is a short transaction of its own that sets claimed_until (a
--   lease); the refresh that follows deletes the entries it worked off only
--   where claimed_until is still its own, so an entry re-armed meanwhile
--   stays queued and is refreshed again; a refresh that died leaves its
--   entries to be claimed again when the lease ends;
-- * a user or group is expanded to visitors after its change committed, so
--   every membership and link committed by then is followed; one that
--   commits later was queued (its visitor, or its user) by its own batch;
-- * two refreshes of one visitor are serialised by its prechat_documents
--   row, locked before the visitor's state is read.
--
-- A batch queues only what can have a document: a visitor with a
-- conversation row, a user with a verified link to one, a group with such
-- a user among its members (every event of a new visitor would otherwise
-- cost entries, claims and deletes). A link, membership or conversation
-- start that another batch, running at the same time, adds is not visible
-- to it, so it may queue nothing for what that addition connects: each
-- batch therefore also queues a recheck of the visitors and users it adds
-- links, memberships and conversation starts for ('recheck',
-- 'recheck_user'), not claimed before queued_at (now plus
-- persistence.Config.RecheckDelay), which rebuilds their documents once
-- more after any such batch has committed.
--
-- resume_after pages an expansion larger than one refresh transaction
-- writes (persistence.Config.FanOutLimit): the visitors up to it are done;
-- a new change to the subject restarts it (NULL).
ALTER TABLE document_refreshes RENAME COLUMN anonymous_id TO subject_id;
ALTER TABLE document_refreshes ADD COLUMN subject_kind text COLLATE "C" NOT NULL DEFAULT 'anonymous'
    CHECK (subject_kind IN ('anonymous', 'user', 'group', 'recheck', 'recheck_user'));
ALTER TABLE document_refreshes ALTER COLUMN subject_kind DROP DEFAULT;
ALTER TABLE document_refreshes ADD COLUMN resume_after text COLLATE "C";
ALTER TABLE document_refreshes ADD COLUMN claimed_until timestamptz;
ALTER TABLE document_refreshes DROP CONSTRAINT document_refreshes_pkey;
ALTER TABLE document_refreshes ADD PRIMARY KEY (subject_kind, subject_id);
ALTER TABLE document_refreshes SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
COMMENT ON TABLE document_refreshes IS 'What batches changed and documents do not show yet: visitors (anonymous; recheck and recheck_user: once more, from queued_at, after a batch added a link, membership or conversation start), users and groups whose live visitors'' documents must be rebuilt. Every consumer works it off, oldest first. GET /v1/prechat/{anonymousId}?after= waits while its visitor is here. A long queue is a consumer behind; steady state is near empty.';
COMMENT ON COLUMN document_refreshes.resume_after IS 'For a user or group with more live visitors than one refresh writes: the last visitor (anonymous_id order) already refreshed; NULL: from the start.';
COMMENT ON COLUMN document_refreshes.claimed_until IS 'Set while a refresh works on the entry (its lease, until then); NULL: waiting. A batch that changes the subject again clears it.';

---- create above / drop below ----

-- Users and groups cannot be queued in the old table: their visitors are
-- queued instead.
INSERT INTO document_refreshes (subject_kind, subject_id)
SELECT DISTINCT 'anonymous', l.anonymous_id
FROM document_refreshes r
JOIN identity_links l ON l.user_id = r.subject_id AND l.verified
WHERE r.subject_kind = 'user'
ON CONFLICT DO NOTHING;
INSERT INTO document_refreshes (subject_kind, subject_id)
SELECT DISTINCT 'anonymous', l.anonymous_id
FROM document_refreshes r
JOIN group_memberships m ON m.group_id = r.subject_id AND m.member_kind = 'user'
JOIN identity_links l ON l.user_id = m.member_id AND l.verified
WHERE r.subject_kind = 'group'
ON CONFLICT DO NOTHING;
DELETE FROM document_refreshes WHERE subject_kind <> 'anonymous';
ALTER TABLE document_refreshes DROP CONSTRAINT document_refreshes_pkey;
ALTER TABLE document_refreshes ADD PRIMARY KEY (subject_id);
ALTER TABLE document_refreshes DROP COLUMN resume_after;
ALTER TABLE document_refreshes DROP COLUMN claimed_until;
ALTER TABLE document_refreshes DROP COLUMN subject_kind;
ALTER TABLE document_refreshes RENAME COLUMN subject_id TO anonymous_id;
ALTER TABLE document_refreshes RESET (fillfactor, autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
COMMENT ON TABLE document_refreshes IS 'Visitors whose documents a change to a shared user or group made stale, queued when there were more than one batch refreshes itself; the consumers refresh and delete them, oldest first, a chunk per transaction. Empty in steady state.';
