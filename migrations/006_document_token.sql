-- The conversation secret: a document is served only to the page that
-- started its conversation (DOCUMENT_ACCESS=token). The conversation start
-- carries the SHA-256 of a secret the page made (context.prechat.tokenHash);
-- the page presents the secret (X-Prechat-Token) when it fetches. Only the
-- hash is stored, beside the document and never inside it: the document
-- JSON is what the API serves.
--
-- Adding a column with a constant default rewrites no rows.
ALTER TABLE conversations ADD COLUMN token_hash text NOT NULL DEFAULT '';
COMMENT ON COLUMN conversations.token_hash IS 'Lowercase hex SHA-256 of the conversation secret, from context.prechat.tokenHash of the conversation start; empty when it carried none. Written with the start it came with (last writer wins).';
ALTER TABLE prechat_documents ADD COLUMN token_hash text NOT NULL DEFAULT '';
COMMENT ON COLUMN prechat_documents.token_hash IS 'The conversation''s token_hash: GET /v1/prechat/{anonymousId} serves the document only with an X-Prechat-Token header whose SHA-256 is this (unless DOCUMENT_ACCESS=anonymousId). Empty: no secret, never served under DOCUMENT_ACCESS=token. Not part of document.';

---- create above / drop below ----

ALTER TABLE prechat_documents DROP COLUMN token_hash;
ALTER TABLE conversations DROP COLUMN token_hash;
