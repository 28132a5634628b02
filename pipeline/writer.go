package pipeline

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/prechat/prechat/mapping"
)

// Writer produces records to the topic; Produce returns once every record
// was acknowledged by all in-sync replicas.
type Writer struct {
	*kafka.Writer
	// tracer, when set, traces each Produce call (WithTracing).
	tracer trace.Tracer
}

// Produce writes the records and waits for their acknowledgement.
func (w Writer) Produce(ctx context.Context, records []mapping.Record) error {
	msgs := make([]kafka.Message, len(records))
	for i, r := range records {
		msgs[i] = kafka.Message{Key: r.Key, Value: r.Value}
	}
	ctx, span := w.produceSpan(ctx, msgs)
	err := w.WriteMessages(ctx, msgs...)
	if span != nil {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "not acknowledged")
		}
		span.End()
	}
	return err
}

// Close flushes pending writes, waits for them, and closes the writer's
// connections: kafka.Writer.Close leaves those of a Transport it was given
// open, each with its goroutines.
func (w Writer) Close() error {
	err := w.Writer.Close()
	if t, ok := w.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	return err
}

// NewWriter returns the kafka-go Writer the ingest produces with: keyed
// messages go to partitions by murmur2 (as Java clients and Segment's Kafka
// destination do), every write waits for all in-sync replicas, and batches
// are flushed after at most 2 ms so a request's latency stays low.
// WriteMessages returns only once every message was acknowledged.
func NewWriter(brokers []string, topic string, dialer *kafka.Dialer, log *zap.Logger) Writer {
	return Writer{Writer: &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond,
		BatchSize:    1000,
		BatchBytes:   16 << 20,
		MaxAttempts:  3,
		WriteTimeout: 10 * time.Second,
		Transport:    transport(dialer),
		Logger:       kafkaLogger(log, zapcore.DebugLevel),
		ErrorLogger:  kafkaLogger(log, zapcore.WarnLevel),
	}}
}
