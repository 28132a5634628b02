package mapping

import "time"

// Batch is one unit of work of the pipeline: the reduced effects of a run of
// messages, the dead letters among them and the positions after them. A
// store commits all of it atomically or none of it, which is what makes the
// effects exactly-once under redelivery.
type Batch struct {
	// State holds the batch's effects, reduced by last-writer-wins.
	State *State
	// Applied lists the batch's events that can change a document
	// (Event.CanChangeDocument), for the read-your-writes bookkeeping.
	Applied []Applied
	// Events counts the valid events of the batch, whether they can change
	// a document or not.
	Events int
	// DeadLetters lists the messages that are not valid events.
	DeadLetters []DeadLetter
	// Positions are the next offsets per partition after this batch.
	Positions []Position
	// Suppressed counts, per suppressed id, the events of the batch dropped
	// because they named it.
	Suppressed map[string]int
	// Trace is the W3C traceparent of the span applying the batch, "" when
	// it is not traced. Opaque here and to storage: the store keeps it with
	// the refreshes the batch queues, so that the refresh can link to it.
	Trace string
}

// NewBatch returns an empty batch.
func NewBatch() *Batch { return &Batch{State: NewState()} }

// Len is the number of messages in the batch.
func (b *Batch) Len() int { return b.Events + len(b.DeadLetters) }

// Add applies a valid event to the batch's state and, if it can change a
// document, records it as applied.
func (b *Batch) Add(e *Event, fallback time.Time) {
	b.Events++
	b.State.Apply(e, fallback)
	if e.CanChangeDocument() {
		b.Applied = append(b.Applied, Applied{MessageID: e.MessageID, Type: e.Type, AnonymousID: e.AnonymousID, UserID: e.UserID})
	}
}

// Applied records that a valid event was applied.
type Applied struct {
	MessageID   string
	Type        Type
	AnonymousID string
	UserID      string
}

// DeadLetter is a message that cannot be applied, with the reason.
type DeadLetter struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Raw       []byte
	Reason    string
	Time      time.Time
}

// Position is the next offset to consume from a partition, per consumer group.
type Position struct {
	Group      string
	Topic      string
	Partition  int
	NextOffset int64
}

// BatchResult says what committing a batch wrote.
type BatchResult struct {
	// Documents is the number of documents written (unchanged ones are not).
	Documents int
	// Visitors are the anonymousIds whose documents were written.
	Visitors []string
	// Queued is how many changes (visitors, users, groups, rechecks) a
	// batch offered the refresh queue (those that cannot have a document
	// are left out there), or how many a refresh took from that queue.
	Queued int
	// Unwritable are the visitors whose documents a refresh could not
	// encode (a time the document's JSON cannot hold) or Postgres refused,
	// left as they were.
	Unwritable []string
	// Links are, for a refresh, the distinct W3C traceparents of the traced
	// batches whose queued changes it took (at most MaxLinks), for its span
	// to link to.
	Links []string
}

// MaxLinks bounds BatchResult.Links, as tracing SDKs bound a span's links
// (OpenTelemetry's default limit is 128).
const MaxLinks = 128

// Materializer builds documents under one set of settings and TTL.
type Materializer struct {
	// Settings are the destination settings.
	Settings *Settings
	// TTL is how long a document lives after its conversation start.
	TTL time.Duration
}

// Document builds the visitor's document.
func (m *Materializer) Document(v Visitor) Document { return m.Settings.Build(v, m.TTL) }

// Record is one raw event with its Kafka key, as the ingest produces it.
type Record struct {
	Key, Value []byte
}
