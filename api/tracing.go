package api

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/prechat/prechat/mapping"
)

// traced wraps the public handler in otelhttp when cfg.TracerProvider is
// set: every request is a server span that continues the caller's W3C
// traceparent. Its metrics are off (Prometheus has them).
func traced(cfg *Config, h http.Handler) http.Handler {
	if cfg.TracerProvider == nil {
		return h
	}
	return otelhttp.NewHandler(h, "prechat",
		otelhttp.WithTracerProvider(cfg.TracerProvider),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(spanName))
}

// spanName names a request's span after its method and, once the mux
// matched it, its route ("GET /v1/prechat/{anonymousId}"), never the path.
func spanName(_ string, r *http.Request) string {
	switch {
	case r.Pattern == "":
		return r.Method
	case strings.Contains(r.Pattern, " "):
		return r.Pattern
	default:
		return r.Method + " " + r.Pattern
	}
}

// Attributes otelhttp records that could identify a person: overwritten on
// every span (see scrubSpan).
var (
	keyURLPath   = attribute.Key("url.path")
	keyClient    = attribute.Key("client.address")
	keyPeer      = attribute.Key("network.peer.address")
	keyUserAgent = attribute.Key("user_agent.original")
	keyRoute     = attribute.Key("http.route")
	keyVisitor   = attribute.Key("prechat.anonymous_id")
	keyEvents    = attribute.Key("prechat.ingest.events")
)

// scrubSpan overwrites what
// otelhttp recorded that could identify a person: the path (it holds the
// anonymousId), the client's and peer's addresses and the user agent. The
// visitor appears only as mapping.LogID.
func scrubSpan(r *http.Request, route string) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	path := route
	attrs := []attribute.KeyValue{keyRoute.String(route), keyClient.String(""), keyPeer.String(""), keyUserAgent.String("")}
	if strings.Contains(route, "{anonymousId}") {
		id := mapping.LogID(r.PathValue("anonymousId"))
		path = strings.Replace(route, "{anonymousId}", id, 1)
		attrs = append(attrs, keyVisitor.String(id))
	}
	span.SetAttributes(append(attrs, keyURLPath.String(path))...)
}

// linkDocument links the request's span to the span of the refresh that
// wrote the document it serves (traceparent "" when untraced).
func linkDocument(ctx context.Context, traceparent string) {
	if traceparent == "" {
		return
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	c := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	if sc := trace.SpanContextFromContext(c); sc.IsValid() {
		span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("prechat.link", "document written")}})
	}
}

// spanEvent adds an event to the request's span, if it is recorded.
func spanEvent(ctx context.Context, name string) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(name)
	}
}

// countEvents records on the request's span how many events it ingested.
func countEvents(ctx context.Context, n int) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(keyEvents.Int(n))
	}
}
