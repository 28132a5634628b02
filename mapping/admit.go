package mapping

import (
	"fmt"
	"time"
)

// Default bounds of Window: how far before and after the Kafka record time
// an event's own time is believed.
const (
	DefaultTimePast   = 24 * time.Hour
	DefaultTimeFuture = 5 * time.Minute
)

// Window bounds the time an event claims (timestamp, sentAt …) to an
// interval around the time its Kafka record was written. Clients choose
// their events' times freely: without a bound an identify dated 9999 would
// win last-writer-wins for ever and a conversation start dated 9999 would
// never expire. The record time is in the log, so the bound is the same on
// every replay.
type Window struct {
	// Past is how far before the record time an event may be dated (Segment
	// clients queue events while offline). Zero means DefaultTimePast.
	Past time.Duration
	// Future is how far after the record time an event may be dated (clock
	// skew). Zero means DefaultTimeFuture.
	Future time.Duration
}

// Bound returns claimed if it lies within the window around record, else
// record itself, and whether it had to replace claimed. A zero record time
// (a record without a timestamp) leaves claimed as it is.
func (w Window) Bound(claimed, record time.Time) (time.Time, bool) {
	if record.IsZero() {
		return claimed, false
	}
	record = record.UTC().Truncate(time.Microsecond)
	past, future := w.Past, w.Future
	if past <= 0 {
		past = DefaultTimePast
	}
	if future <= 0 {
		future = DefaultTimeFuture
	}
	if claimed.Before(record.Add(-past)) || claimed.After(record.Add(future)) {
		return record, true
	}
	return claimed, false
}

// Policy is what decoded events are admitted under before they are applied:
// the time window and the identity verifier. Admission is a pure function
// of the event, its record time and the policy, so replaying the same log
// under the same policy gives the same state.
type Policy struct {
	// Window bounds event times (see Window).
	Window Window
	// Verifier checks identity proofs; nil verifies none (every event then
	// counts for its own visitor only).
	Verifier *Verifier
}

// Admission says what Admit decided about one event.
type Admission struct {
	// Clamped is true when the event's claimed time was outside the window
	// and the record time was used instead.
	Clamped bool
	// Proof is the outcome of the event's identity proof.
	Proof ProofResult
	// Refused says why the event cannot be applied at all: its time, even
	// bounded by the window, is after LatestEventTime (a record time no
	// broker clock gives, but a producer may set). Nil otherwise.
	Refused error
}

// LatestEventTime is the latest event time a document can hold: its
// createdAt, updatedAt and expiresAt (a TTL of at most MaxTTL later) must
// stay within the years JSON times have (up to 9999).
var LatestEventTime = time.Date(9998, 12, 31, 0, 0, 0, 0, time.UTC)

// MaxTTL is the longest document TTL (a year), for LatestEventTime.
const MaxTTL = 365 * 24 * time.Hour

// Admit settles e's time (e.At) within the window around the record time
// and checks its identity proof (e.Verified), as of the record time. A nil
// Policy is the zero one.
func (p *Policy) Admit(e *Event, record time.Time) Admission {
	if p == nil {
		p = &Policy{}
	}
	e.At = time.Time{}
	var a Admission
	e.At, a.Clamped = p.Window.Bound(e.Time(record), record)
	if e.At.After(LatestEventTime) {
		a.Refused = fmt.Errorf("event time %s (the record time's, or within the window around it) is after %s: its document could not hold it",
			e.At.UTC().Format(time.RFC3339), LatestEventTime.Format(time.DateOnly))
		return a
	}
	a.Proof = p.Verifier.Verify(e, record)
	e.Verified = a.Proof == ProofValid
	return a
}
