-- Which shared profiles each document is built from, so that a change to a
-- group costs what it reaches, not a walk through its members (docs/
-- how-it-works.md "Documents rebuilt from a queue of changes").
--
-- user_id is the verified user whose shared traits the document shows;
-- group_id the group whose shared traits that user's membership brings
-- (mapping.Visitor.SharedUser and SharedGroup). Both are NULL for a
-- document that shows only what its visitor sent itself. A batch that
-- changes a group's shared traits queues the group only when a document is
-- built from it (one index probe instead of walking its members' links and
-- conversations: a group call on every page of a B2B site made that walk
-- the costliest statement), and a refresh expands it to exactly those
-- documents. Users keep being found through their verified links (a few
-- probes each).
--
-- Why no group change is lost: a document starts being built from a group
-- only through a change to its visitor or user (a link, its verification,
-- a membership, a conversation start), queued by that change's batch. The
-- refresh that then builds the document from the group takes a shared
-- transaction-level advisory lock on the group (class 0x70726567, key
-- hashtext(groupId)) and reads the visitor again; a batch writing the
-- group's shared traits holds the exclusive lock from before that write
-- until it commits. So either the refresh waits for the batch and reads its
-- change, or the batch waits for the refresh and then finds its document
-- here.
--
-- Rechecks: a refresh that writes a visitor's first document, or changes
-- which shared profiles it is built from, queues a recheck of the visitor
-- (document_refreshes kind 'recheck', persistence.Config.RecheckDelay
-- later), for a batch that ran at the same time as the change that caused
-- it and could not see it (as batches did for every link, membership and
-- conversation start before). 'recheck_user' entries left from before are
-- expanded as users.
ALTER TABLE prechat_documents ADD COLUMN user_id text COLLATE "C";
ALTER TABLE prechat_documents ADD COLUMN group_id text COLLATE "C";
COMMENT ON COLUMN prechat_documents.user_id IS 'The verified user whose shared traits the document shows (not served); NULL: none.';
COMMENT ON COLUMN prechat_documents.group_id IS 'The group whose shared traits the document shows through its verified user''s membership (not served); NULL: none. A change to that group''s traits rebuilds the document.';
-- Existing documents: from what they show (a group only a visitor's own
-- membership names is included too; its next refresh corrects it).
UPDATE prechat_documents
SET user_id = document ->> 'userId', group_id = document ->> 'groupId'
WHERE document ->> 'userVerified' = 'true';
CREATE INDEX prechat_documents_group_id_idx ON prechat_documents (group_id, anonymous_id) WHERE group_id IS NOT NULL;
COMMENT ON TABLE document_refreshes IS 'What batches changed and documents do not show yet: visitors (anonymous; recheck: once more, from queued_at, after a refresh wrote a visitor''s first document or changed which shared profiles it shows), users and groups whose documents must be rebuilt. Every consumer works it off, oldest first. GET /v1/prechat/{anonymousId}?after= waits while its visitor is here. A long queue is a consumer behind; steady state is near empty.';

---- create above / drop below ----

DROP INDEX prechat_documents_group_id_idx;
ALTER TABLE prechat_documents DROP COLUMN group_id;
ALTER TABLE prechat_documents DROP COLUMN user_id;
COMMENT ON TABLE document_refreshes IS 'What batches changed and documents do not show yet: visitors (anonymous; recheck and recheck_user: once more, from queued_at, after a batch added a link, membership or conversation start), users and groups whose live visitors'' documents must be rebuilt. Every consumer works it off, oldest first. GET /v1/prechat/{anonymousId}?after= waits while its visitor is here. A long queue is a consumer behind; steady state is near empty.';
