-- Trait rows carry a version, so that a batch can merge traits in Go and
-- write a row only if no other transaction changed it since the batch
-- read it (optimistic concurrency; persistence/traits.go). Merging every
-- row in SQL (prechat_merge_traits, prechat_traits_change) was the
-- costliest statement of a batch; it remains for the rows another
-- transaction changed meanwhile, and bumps the version too. Every write
-- of a row increments version; a new row has version 1.
ALTER TABLE traits ADD COLUMN version bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN traits.version IS 'Incremented by every write of the row (a new row: 1): a batch writes the traits it merged only if the version is still the one it read.';

---- create above / drop below ----

ALTER TABLE traits DROP COLUMN version;
