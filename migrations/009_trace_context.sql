-- Tracing across the refresh queue (docs/tracing.md). Both columns are
-- NULL unless the processor exports traces (OTEL_* variables).
--
-- document_refreshes.traceparent: the W3C traceparent of the span of the
-- last batch that queued the entry (a batch re-arming an entry overwrites
-- it); the refresh that claims the entry links its span to it.
-- prechat_documents.traceparent: the traceparent of the refresh span that
-- wrote the document; a fetch serving the document links its span to it.
-- Neither is part of the document JSON the API serves.
ALTER TABLE document_refreshes ADD COLUMN traceparent text;
ALTER TABLE prechat_documents ADD COLUMN traceparent text;
COMMENT ON COLUMN document_refreshes.traceparent IS 'W3C traceparent of the batch span that last queued this entry; NULL when tracing is off.';
COMMENT ON COLUMN prechat_documents.traceparent IS 'W3C traceparent of the refresh span that wrote this document (not served); NULL when tracing is off.';

---- create above / drop below ----

ALTER TABLE prechat_documents DROP COLUMN traceparent;
ALTER TABLE document_refreshes DROP COLUMN traceparent;
