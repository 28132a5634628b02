package pipeline

import (
	"context"
	"time"
)

// Backoff is the one wait between attempts of an operation that failed for
// a reason time may cure (Postgres or Kafka unreachable): it starts at Min
// and doubles after each wait up to Max. The consumer's batches and
// fetchers and the processor's wait for Postgres at start-up all use it, so
// every outage is waited out the same way.
type Backoff struct {
	// Min is the first wait, and the wait after Reset.
	Min time.Duration
	// Max bounds the wait.
	Max time.Duration

	next time.Duration
}

// Next returns the wait the next call to Wait sleeps.
func (b *Backoff) Next() time.Duration {
	if b.next == 0 {
		b.next = b.Min
	}
	return b.next
}

// Wait sleeps for the next wait, then doubles it (up to Max). It returns
// false, at once, when ctx ends first.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		b.next = min(2*b.next, b.Max)
		return true
	}
}

// Reset makes the next wait Min again, after a success.
func (b *Backoff) Reset() { b.next = 0 }
