-- Documents over ~2 KB (those rendered for several products) are compressed
-- when stored; lz4 costs a fraction of the default pglz's CPU. Servers built
-- without lz4 keep pglz.
DO $$
BEGIN
    ALTER TABLE prechat_documents ALTER COLUMN document SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available on this server; documents keep pglz compression';
END
$$;

---- create above / drop below ----

ALTER TABLE prechat_documents ALTER COLUMN document SET COMPRESSION default;
