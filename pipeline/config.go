package pipeline

import (
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
	// write and one queued refresh; a lane holds up to three batches' worth of
	// messages (see Lanes). Batches only fill under
	// backlog: otherwise BatchTimeout cuts them. Default: 10000.
	BatchSize int
	// Lanes is how many batches a consumer applies at once. Each lane owns a
	// share of the assigned partitions (dealt in partition order) with its
	// own batches and transactions, so Postgres works on several batches in
	// parallel while each partition's batches stay in order; no lock is
	// shared by all lanes (documents are rebuilt from the refresh queue, see
	// RefreshBatch). Lanes beyond the number of assigned
	// partitions are not started. Each lane holds one Postgres connection and
	// up to three batches' worth of messages: one batch committing, the next
	// decoded and waiting, and up to BatchSize messages its fetchers have
	// queued for the batch after. Default: 2.
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
	// RefreshCoalesce is how long a queued change waits for more changes
	// of its visitor, user or group while the consumer is behind (the last
	// batch committed left at least another BatchSize messages in its
	// partitions): their documents are then rebuilt once for all of them,
	// which leaves more of the machine to the batches. Caught up, changes
	// are refreshed at once. Default: 1s; negative: never wait.
	RefreshCoalesce time.Duration

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

// The bounds Validate checks.
const (
	// MaxBatchSize bounds BatchSize: a lane holds up to three batches'
	// worth of messages, and a batch's decoded events and rows besides.
	MaxBatchSize = 100000
	// MaxLanes bounds Lanes: each lane holds a Postgres connection and up
	// to three batches' worth of messages.
	MaxLanes = 16
	// DefaultBatchSize is a zero BatchSize's value.
	DefaultBatchSize = 10000
	// DefaultLanes is a zero Lanes's value.
	DefaultLanes = 2
	// MaxRefreshCoalesce bounds RefreshCoalesce: how far behind documents
	// may fall under load by design (the PrechatDocumentsBehind alert fires
	// at 30s).
	MaxRefreshCoalesce = 10 * time.Second
)

// FieldError is the error of Validate: the field at fault and what is
// wrong with it, so that a caller can name its own source of the field
// (cmd/processor names the environment variable).
type FieldError struct {
	// Field is the Config field's name, such as "BatchSize".
	Field string
	// Problem says what is wrong, such as "0 is not between 1 and 100000".
	Problem string
}

func (e *FieldError) Error() string { return "pipeline: " + e.Field + ": " + e.Problem }

// Validate reports the first missing or invalid field, as a *FieldError.
// Zero fields take their defaults first; the ranges are those the consumer
// can run with (a heartbeat at most half the session timeout, as the
// consumer group protocol needs to keep a member that misses one).
func (c *Config) Validate() error {
	d := c.withDefaults()
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	switch {
	case len(c.Brokers) == 0:
		return bad("Brokers", "required")
	case c.Topic == "":
		return bad("Topic", "required")
	case c.GroupID == "":
		return bad("GroupID", "required")
	case c.Materializer == nil || c.Materializer.Settings == nil:
		return bad("Materializer", "required, with Settings")
	case c.BatchSize < 0 || d.BatchSize > MaxBatchSize:
		return bad("BatchSize", "%d is not between 1 and %d", c.BatchSize, MaxBatchSize)
	case c.Lanes < 0 || d.Lanes > MaxLanes:
		return bad("Lanes", "%d is not between 1 and %d", c.Lanes, MaxLanes)
	case d.RefreshCoalesce > MaxRefreshCoalesce:
		return bad("RefreshCoalesce", "%s is more than %s: under load, documents would fall that far behind", c.RefreshCoalesce, MaxRefreshCoalesce)
	case c.BatchTimeout < 0:
		return bad("BatchTimeout", "%s must be positive", c.BatchTimeout)
	case c.SessionTimeout < 0:
		return bad("SessionTimeout", "%s must be positive", c.SessionTimeout)
	case c.HeartbeatInterval < 0 || d.HeartbeatInterval*2 > d.SessionTimeout:
		return bad("HeartbeatInterval", "%s must be positive and at most half of the session timeout (%s)", c.HeartbeatInterval, d.SessionTimeout)
	case c.StartOffset != 0 && c.StartOffset != kafka.FirstOffset && c.StartOffset != kafka.LastOffset:
		return bad("StartOffset", "must be kafka.FirstOffset or kafka.LastOffset, not %d", c.StartOffset)
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
		c.BatchSize = DefaultBatchSize
	}
	if c.Lanes == 0 {
		c.Lanes = DefaultLanes
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
	switch {
	case c.RefreshCoalesce == 0:
		c.RefreshCoalesce = time.Second
	case c.RefreshCoalesce < 0:
		c.RefreshCoalesce = 0
	}
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
