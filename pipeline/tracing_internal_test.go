package pipeline

import (
	"context"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/prechat/prechat/mapping"
)

// TestBatchLinksReadTheRecordsTraceContext: the writer's send span is
// written into every record's headers; a batch links to each distinct span
// its records name once, ignores records without a valid traceparent, and
// keeps at most mapping.MaxLinks links, counting the rest.
func TestBatchLinksReadTheRecordsTraceContext(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	w := Writer{Writer: &kafka.Writer{Topic: "t"}}.WithTracing(tp)
	msgs := []kafka.Message{{Value: []byte("a")}, {Value: []byte("b"), Headers: []kafka.Header{{Key: "traceparent", Value: []byte("stale")}}}}
	_, span := w.produceSpan(context.Background(), msgs)
	span.End()
	sent := spans.Ended()[0].SpanContext()
	for i, m := range msgs {
		got := (headerCarrier{&m.Headers}).Get("traceparent")
		if got != traceparentOf(sent) || len(m.Headers) != 1 {
			t.Fatalf("record %d headers %v, want one traceparent %s", i, m.Headers, traceparentOf(sent))
		}
	}
	batch := append(msgs, kafka.Message{Value: []byte("untraced")},
		kafka.Message{Headers: []kafka.Header{{Key: "traceparent", Value: []byte("00-zz-zz-01")}}})
	links, dropped := batchLinks(batch)
	if len(links) != 1 || dropped != 0 || links[0].SpanContext.SpanID() != sent.SpanID() {
		t.Fatalf("links %v (%d dropped), want the send span once", links, dropped)
	}

	var many []kafka.Message
	for i := range mapping.MaxLinks + 5 {
		tp := fmt.Sprintf("00-4bf92f3577b34da6a3ce929d0e0e4736-%016x-01", i+1)
		many = append(many, kafka.Message{Headers: []kafka.Header{{Key: "traceparent", Value: []byte(tp)}}})
	}
	if links, dropped := batchLinks(many); len(links) != mapping.MaxLinks || dropped != 5 {
		t.Fatalf("%d links, %d dropped; want %d and 5", len(links), dropped, mapping.MaxLinks)
	}
}

func traceparentOf(sc trace.SpanContext) string {
	return traceparent(trace.ContextWithSpanContext(context.Background(), sc))
}
