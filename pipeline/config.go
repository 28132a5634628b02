package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/prechat/prechat/mapping"
)

// Config configures a Consumer. Zero fields take the documented defaults.
type Config struct {
	// Brokers are the Kafka bootstrap addresses. Required.
	Brokers []string
	// Topic is the topic of Segment events. Required.
	Topic string
	// GroupID is the consumer group; offsets are stored per group. Required.
	GroupID string
	// Dialer connects to the brokers (TLS, SASL). Default: kafka-go's default dialer.
	Dialer *kafka.Dialer

	// Materializer builds the documents. Required.
	Materializer *mapping.Materializer
	// Policy admits decoded events: it bounds their times to a window
	// around the Kafka record time and checks their identity proofs.
	// Default: nil, the default window (mapping.DefaultTimePast and
	// DefaultTimeFuture) and no verifier, so every event counts for its own
	// visitor only.
	Policy *mapping.Policy

	// BatchSize is the most messages applied in one transaction. Larger
	// batches fold more events of one visitor, user or group into one row
	// write and one queued refresh; each lane holds at most two. Batches only fill under
	// backlog: otherwise BatchTimeout cuts them. Default: 10000.
	BatchSize int
	// Lanes is how many batches a consumer applies at once. Each lane owns a
	// share of the assigned partitions (dealt in partition order) with its
	// own batches and transactions, so Postgres works on several batches in
	// parallel while each partition's batches stay in order; no lock is
	// shared by all lanes (documents are rebuilt from the refresh queue, see
	// RefreshBatch). Lanes beyond the number of assigned
	// partitions are not started. Each lane holds at most two batches in
	// memory and one Postgres connection. Default: 2.
	Lanes int
	// BatchTimeout is the longest a batch waits for more messages once it has
	// one. Default: 50ms.
	BatchTimeout time.Duration
	// MaxWait is the longest a fetch waits on the broker for new data.
	// Default: 500ms.
	MaxWait time.Duration
	// MaxBytes bounds one fetch response of one partition, so the fetchers
	// hold at most MaxBytes per assigned partition. Default: 1 MiB (about
	// 3,500 typical Segment events).
	MaxBytes int
	// StartOffset is where a partition with no stored and no committed offset
	// starts: kafka.FirstOffset or kafka.LastOffset. Default: kafka.FirstOffset.
	StartOffset int64

	// SessionTimeout is the consumer group session timeout. Default: 30s.
	SessionTimeout time.Duration
	// HeartbeatInterval is the consumer group heartbeat. Default: 3s.
	HeartbeatInterval time.Duration
	// RebalanceTimeout bounds a rebalance. Default: 30s.
	RebalanceTimeout time.Duration
	// JoinGroupBackoff is the wait before joining the group again after an
	// error. Default: 2s.
	JoinGroupBackoff time.Duration

	// RefreshBatch is the most queued changes (visitors, users, groups)
	// whose documents one refresh transaction rebuilds (see
	// Store.RefreshQueued); every document is written by these refreshes,
	// which run beside the lanes. Default: 1000.
	RefreshBatch int
	// RefreshInterval is how often the consumer looks for queued refreshes
	// besides those its own batches queued. Default: 1s.
	RefreshInterval time.Duration

	// RetryMin and RetryMax bound the exponential backoff of retries when
	// Postgres or Kafka fail. Defaults: 100ms and 10s.
	RetryMin, RetryMax time.Duration
	// ShutdownGrace is how long the batch in flight may still take to commit
	// once Run's context is cancelled. Default: 10s.
	ShutdownGrace time.Duration

	// Logger receives the consumer's logs. Default: zap.NewNop().
	Logger *zap.Logger
	// Registerer receives the consumer's Prometheus metrics. Default: none
	// (kept private).
	Registerer prometheus.Registerer
	// AfterCommit, if set, is called after a batch committed to the store and
	// before its offsets are committed to Kafka: the window fault-injection
	// tests kill the process in.
	AfterCommit func()
	// OnBatch, if set, is called after each committed batch.
	OnBatch func(BatchInfo)
	// TracerProvider, if set, traces the consumer (docs/tracing.md): a span
	// per batch, linked to the spans its records' headers name, and a span
	// per refresh transaction that wrote documents, linked to the batches
	// whose changes it rebuilt. Default: none (no spans, no header parsed).
	TracerProvider trace.TracerProvider
}

// BatchInfo describes a committed batch.
type BatchInfo struct {
	// Messages is the number of Kafka messages in the batch.
	Messages int
	// DeadLetters is how many of them were dead letters.
	DeadLetters int
	// Result is what the store wrote.
	Result mapping.BatchResult
	// Positions are the next offsets stored with the batch.
	Positions []mapping.Position
	// Took is the time from the first message to the commit.
	Took time.Duration
}

// Validate reports the first missing or invalid field.
func (c *Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("pipeline: Brokers is required")
	case c.Topic == "":
		return errors.New("pipeline: Topic is required")
	case c.GroupID == "":
		return errors.New("pipeline: GroupID is required")
	case c.Materializer == nil || c.Materializer.Settings == nil:
		return errors.New("pipeline: Materializer with Settings is required")
	case c.Lanes < 0:
		return fmt.Errorf("pipeline: Lanes %d is negative", c.Lanes)
	case c.BatchSize < 0:
		return fmt.Errorf("pipeline: BatchSize %d is negative", c.BatchSize)
	case c.StartOffset != 0 && c.StartOffset != kafka.FirstOffset && c.StartOffset != kafka.LastOffset:
		return fmt.Errorf("pipeline: StartOffset must be kafka.FirstOffset or kafka.LastOffset, not %d", c.StartOffset)
	}
	return nil
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.BatchSize == 0 {
		c.BatchSize = 10000
	}
	if c.Lanes == 0 {
		c.Lanes = 2
	}
	def(&c.BatchTimeout, 50*time.Millisecond)
	def(&c.MaxWait, 500*time.Millisecond)
	if c.MaxBytes <= 0 {
		c.MaxBytes = 1 << 20
	}
	if c.StartOffset == 0 {
		c.StartOffset = kafka.FirstOffset
	}
	def(&c.SessionTimeout, 30*time.Second)
	def(&c.HeartbeatInterval, 3*time.Second)
	def(&c.RebalanceTimeout, 30*time.Second)
	def(&c.JoinGroupBackoff, 2*time.Second)
	if c.RefreshBatch <= 0 {
		c.RefreshBatch = 1000
	}
	def(&c.RefreshInterval, time.Second)
	def(&c.RetryMin, 100*time.Millisecond)
	def(&c.RetryMax, 10*time.Second)
	def(&c.ShutdownGrace, 10*time.Second)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Dialer == nil {
		c.Dialer = kafka.DefaultDialer
	}
	return c
}
