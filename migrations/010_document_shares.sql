-- Which shared profiles each document is built from, so that a change to a
-- user or group costs what it reaches, not a search through its members
-- (docs/how-it-works.md "Documents rebuilt from a queue of changes").
--
-- user_id is the verified user whose shared traits the document shows;
-- group_id the group whose shared traits that user's membership brings
-- (mapping.Visitor.SharedUser and SharedGroup). Both are NULL for a
-- document that shows only what its visitor sent itself. A batch that
-- changes a user's or group's shared rows queues the user or group only
-- when a document is built from it (one index probe instead of walking its
-- members' links and conversations), and a refresh expands it to exactly
-- those documents.
--
-- Why nothing is lost: a document starts being built from a user or group
-- only through a change to its own visitor (a link, its verification, a
-- membership, a conversation start), which its batch queues as that
-- visitor. A batch that changes the user or group while the refresh
-- rebuilding the visitor is in flight sees neither the refresh's new
-- columns nor is seen by it. So a refresh that writes a document whose
-- shared profiles changed, or a visitor's first document, queues a recheck
-- of the visitor (document_refreshes kind 'recheck', persistence.Config.
-- RecheckDelay later), which rebuilds it once more after any such batch has
-- committed. Batches queue no rechecks any more; 'recheck_user' entries
-- left from before are expanded as users.
ALTER TABLE prechat_documents ADD COLUMN user_id text COLLATE "C";
ALTER TABLE prechat_documents ADD COLUMN group_id text COLLATE "C";
COMMENT ON COLUMN prechat_documents.user_id IS 'The verified user whose shared traits the document shows (not served); NULL: none. A change to that user''s traits or memberships rebuilds the document.';
COMMENT ON COLUMN prechat_documents.group_id IS 'The group whose shared traits the document shows through its verified user''s membership (not served); NULL: none. A change to that group''s traits rebuilds the document.';
-- Existing documents: from what they show (a group only a visitor's own
-- membership names is included too; its next refresh corrects it).
UPDATE prechat_documents
SET user_id = document ->> 'userId', group_id = document ->> 'groupId'
WHERE document ->> 'userVerified' = 'true';
CREATE INDEX prechat_documents_user_id_idx ON prechat_documents (user_id, anonymous_id) WHERE user_id IS NOT NULL;
CREATE INDEX prechat_documents_group_id_idx ON prechat_documents (group_id, anonymous_id) WHERE group_id IS NOT NULL;
COMMENT ON TABLE document_refreshes IS 'What batches changed and documents do not show yet: visitors (anonymous; recheck: once more, from queued_at, after a refresh wrote a visitor''s first document or changed which shared profiles it shows), users and groups whose documents must be rebuilt. Every consumer works it off, oldest first. GET /v1/prechat/{anonymousId}?after= waits while its visitor is here. A long queue is a consumer behind; steady state is near empty.';

---- create above / drop below ----

DROP INDEX prechat_documents_group_id_idx;
DROP INDEX prechat_documents_user_id_idx;
ALTER TABLE prechat_documents DROP COLUMN group_id;
ALTER TABLE prechat_documents DROP COLUMN user_id;
COMMENT ON TABLE document_refreshes IS 'What batches changed and documents do not show yet: visitors (anonymous; recheck and recheck_user: once more, from queued_at, after a batch added a link, membership or conversation start), users and groups whose live visitors'' documents must be rebuilt. Every consumer works it off, oldest first. GET /v1/prechat/{anonymousId}?after= waits while its visitor is here. A long queue is a consumer behind; steady state is near empty.';
