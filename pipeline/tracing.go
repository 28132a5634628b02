package pipeline

import (
	"context"
	"strconv"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/prechat/prechat/mapping"
)

// instrumentation is the name of the pipeline's tracer.
const instrumentation = "github.com/prechat/prechat/pipeline"

// traceContext is the W3C trace context propagator: the traceparent (and
// tracestate) the ingest writes into each record's headers, and the form in
// which storage keeps a span's context (mapping.Batch.Trace).
var traceContext = propagation.TraceContext{}

// Messaging attributes (OpenTelemetry semantic conventions for messaging).
var (
	attrSystem      = attribute.String("messaging.system", "kafka")
	keyDestination  = attribute.Key("messaging.destination.name")
	keyOperation    = attribute.Key("messaging.operation.type")
	keyGroup        = attribute.Key("messaging.consumer.group.name")
	keyBatchCount   = attribute.Key("messaging.batch.message_count")
	keyPartition    = attribute.Key("messaging.destination.partition.id")
	keyOffset       = attribute.Key("messaging.kafka.offset")
	keyDeadLetters  = attribute.Key("prechat.dead_letters")
	keyQueued       = attribute.Key("prechat.refresh.queued")
	keyClaimed      = attribute.Key("prechat.refresh.claimed")
	keyDocuments    = attribute.Key("prechat.documents.written")
	keyLinksDropped = attribute.Key("prechat.links.dropped")
)

// traceparent is the W3C traceparent of the span in ctx, "" when there is
// no sampled span.
func traceparent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	return carrier["traceparent"]
}

// spanContextOf is the span context a traceparent names (invalid when it
// names none).
func spanContextOf(tp string) trace.SpanContext {
	ctx := traceContext.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
	return trace.SpanContextFromContext(ctx)
}

// headerCarrier adapts a Kafka message's headers to propagation.TextMapCarrier.
type headerCarrier struct{ headers *[]kafka.Header }

func (c headerCarrier) Get(key string) string {
	for _, h := range *c.headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) {
	for i, h := range *c.headers {
		if h.Key == key {
			(*c.headers)[i].Value = []byte(value)
			return
		}
	}
	*c.headers = append(*c.headers, kafka.Header{Key: key, Value: []byte(value)})
}

func (c headerCarrier) Keys() []string {
	keys := make([]string, len(*c.headers))
	for i, h := range *c.headers {
		keys[i] = h.Key
	}
	return keys
}

// batchLinks are the links of a batch span: the span context each of its
// messages carries in its headers (the ingest's send span), once each, at
// most mapping.MaxLinks; dropped counts those left out.
func batchLinks(msgs []kafka.Message) (links []trace.Link, dropped int) {
	seen := map[trace.SpanID]bool{}
	for i := range msgs {
		m := &msgs[i]
		if len(m.Headers) == 0 {
			continue
		}
		sc := trace.SpanContextFromContext(traceContext.Extract(context.Background(), headerCarrier{&m.Headers}))
		if !sc.IsValid() || seen[sc.SpanID()] {
			continue
		}
		seen[sc.SpanID()] = true
		if len(links) == mapping.MaxLinks {
			dropped++
			continue
		}
		links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
			keyPartition.String(strconv.Itoa(m.Partition)), keyOffset.Int64(m.Offset),
		}})
	}
	return links, dropped
}

// startBatch starts the span of a batch being applied, linked to its
// messages' spans, and records its traceparent on the batch, for the
// refreshes it queues. Without a tracer it returns ctx and nil.
func (c *Consumer) startBatch(ctx context.Context, p *pending) (context.Context, trace.Span) {
	if c.tracer == nil {
		return ctx, nil
	}
	links, dropped := batchLinks(p.raw)
	ctx, span := c.tracer.Start(ctx, "process "+c.cfg.Topic, trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...), trace.WithAttributes(attrSystem, keyOperation.String("process"),
			keyDestination.String(c.cfg.Topic), keyGroup.String(c.cfg.GroupID), keyBatchCount.Int(len(p.raw))))
	if dropped > 0 {
		span.SetAttributes(keyLinksDropped.Int(dropped))
	}
	return ctx, span
}

// endBatch ends a batch span with what the batch did.
func endBatch(span trace.Span, p *pending, res mapping.BatchResult, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "batch abandoned")
	} else {
		span.SetAttributes(keyDeadLetters.Int(len(p.batch.DeadLetters)), keyQueued.Int(res.Queued))
	}
	span.End()
}

// refreshSpan runs one refresh transaction in its own span (a new root),
// whose traceparent the documents it writes keep, linked to the spans of
// the batches whose changes it took. A refresh that found nothing queued is
// not recorded: its span is left unended, which the SDK never exports and
// which holds nothing once dropped, so an idle consumer's periodic
// refreshes cost no traces.
func (c *Consumer) refreshSpan(ctx context.Context, refresh func(ctx context.Context, tp string) (mapping.BatchResult, error)) (mapping.BatchResult, error) {
	if c.tracer == nil {
		return refresh(ctx, "")
	}
	ctx, span := c.tracer.Start(ctx, "refresh documents", trace.WithNewRoot())
	res, err := refresh(ctx, traceparent(ctx))
	if err == nil && res.Queued == 0 {
		return res, nil
	}
	for _, tp := range res.Links {
		if sc := spanContextOf(tp); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "refresh failed")
	} else {
		span.SetAttributes(keyClaimed.Int(res.Queued), keyDocuments.Int(res.Documents))
	}
	span.End()
	return res, err
}

// produceSpan starts the span of a Produce call and writes its context into
// every message's headers. Without a tracer it returns ctx and nil.
func (w Writer) produceSpan(ctx context.Context, msgs []kafka.Message) (context.Context, trace.Span) {
	if w.tracer == nil {
		return ctx, nil
	}
	ctx, span := w.tracer.Start(ctx, "send "+w.Topic, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attrSystem, keyOperation.String("send"), keyDestination.String(w.Topic), keyBatchCount.Int(len(msgs))))
	for i := range msgs {
		traceContext.Inject(ctx, headerCarrier{&msgs[i].Headers})
	}
	return ctx, span
}

// WithTracing returns the writer with tracing by tp: each Produce call is a
// producer span, child of the span in its context (the ingest request's),
// whose W3C traceparent every record carries in its headers. A nil tp
// turns tracing off.
func (w Writer) WithTracing(tp trace.TracerProvider) Writer {
	w.tracer = nil
	if tp != nil {
		w.tracer = tp.Tracer(instrumentation)
	}
	return w
}
