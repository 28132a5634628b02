// Package api is Prechat's public HTTP surface: the pre-chat document
// endpoint with long-polling and read-your-writes, the browser snippet, and
// an ingest that speaks Segment's HTTP Tracking API and produces to Kafka.
//
// It declares the interfaces it needs (Documents, Notifier, Producer);
// cmd/processor wires them to persistence and pipeline.
package api
